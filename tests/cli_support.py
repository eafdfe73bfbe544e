"""Running the `marketsense` command in this process and reading its one error line."""

from __future__ import annotations

from collections.abc import Mapping

from typer.testing import CliRunner, Result

from marketsense.cli.main import app as cli


def invoke(*args: str, key: str | None = None, env: Mapping[str, str] | None = None) -> Result:
    """Invoke `marketsense ARGS` with `key` as MARKETSENSE_API_KEY; the key appears in no output."""
    environment = {"MARKETSENSE_API_KEY": key or "", **(env or {})}
    result = CliRunner().invoke(cli, list(args), env=environment)
    if key:
        assert key not in result.stdout + result.stderr
    return result


def one_error_line(result: Result) -> str:
    """The single stderr line of a command that failed with exit code 1."""
    assert result.exit_code == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]
