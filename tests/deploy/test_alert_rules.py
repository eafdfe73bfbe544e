"""The Prometheus alert rules are valid, and fire on exactly the cases their test file lists."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "marketsense" / "files"


def _promtool() -> str:
    path = shutil.which("promtool") or "/usr/bin/promtool"
    if not Path(path).is_file():
        pytest.fail(
            "promtool is not installed: run the tests through scripts/test.sh (it installs the "
            "prometheus Debian package) or `sudo apt-get install -y prometheus`"
        )
    return path


def _run(*args: str) -> str:
    result = subprocess.run(
        [_promtool(), *args], cwd=RULES, capture_output=True, text=True, timeout=60, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def test_alert_rules_pass_promtools_check() -> None:
    output = _run("check", "rules", "alerts.yml")

    assert "SUCCESS: 12 rules found" in output


def test_alert_rules_fire_exactly_where_their_unit_tests_say() -> None:
    # The test file holds, for each alert, cases where it must fire and where it must not.
    output = _run("test", "rules", "alerts.test.yml")

    assert "SUCCESS" in output
