"""`python -m marketsense.common.db`, the chart's migration Job, migrates or says what to fix."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory

from marketsense.common.db.migrate import alembic_config


def _migrate(**env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MARKETSENSE_")}
    return subprocess.run(
        [sys.executable, "-m", "marketsense.common.db"],
        env=base | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_migration_job_brings_a_new_database_to_the_newest_revision(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()

    first = _migrate(MARKETSENSE_DATABASE_URL=url)
    second = _migrate(MARKETSENSE_DATABASE_URL=url)

    assert (first.returncode, first.stdout.strip()) == (0, f"database at revision {head}")
    assert (second.returncode, second.stdout.strip()) == (0, f"database at revision {head}")


def test_migration_job_without_a_database_url_exits_2() -> None:
    done = _migrate()

    assert done.returncode == 2
    assert done.stderr.strip() == "error: set MARKETSENSE_DATABASE_URL to the database to migrate"


def test_migration_job_on_an_unreachable_database_exits_1_with_the_setting_to_check() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    done = _migrate(MARKETSENSE_DATABASE_URL=f"postgresql://app:secret-pw@127.0.0.1:{port}/app")

    assert done.returncode == 1
    assert done.stderr.startswith("error: cannot reach the database (")
    assert done.stderr.strip().endswith("check MARKETSENSE_DATABASE_URL")
    assert "secret-pw" not in done.stderr + done.stdout
