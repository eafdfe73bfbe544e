"""`marketsense run list|status|retry|cancel` against an orchestrator served on loopback."""

from __future__ import annotations

import socket
from pathlib import Path

from typer.testing import CliRunner, Result

from marketsense.cli.main import app as cli
from marketsense.common.auth import Role
from marketsense.common.states import Stage
from tests.behaviour.cli.conftest import Served
from tests.cli_support import invoke, one_error_line
from tests.conftest import TEST_AS_OF
from tests.model_registry_rows import new_api_key
from tests.orchestrator_support import fail_symbol, succeed_symbol


def run(served: Served, key: str | None, *args: str) -> Result:
    """Invoke `marketsense ARGS` against the served orchestrator."""
    return invoke(*args, key=key, env={"MARKETSENSE_ORCHESTRATOR_URL": served.url})


async def test_run_commands_start_list_retry_and_cancel(served: Served) -> None:
    publisher = await new_api_key(served.runtime.database, role=Role.PUBLISHER)
    day = TEST_AS_OF.isoformat()
    started = run(served, publisher, "run", "start", "--symbols", "AAA,BBB", "--as-of", day)
    assert started.exit_code == 0, started.stderr
    run_id = started.stdout.strip()

    listed = run(served, publisher, "run", "list", "--state", "running", "--json")
    assert listed.exit_code == 0, listed.stderr
    assert '"id": "' + run_id + '"' in listed.stdout
    table = run(served, publisher, "run", "list")
    assert run_id[:8] in table.stdout
    assert "RUNNING" in table.stdout

    await succeed_symbol(served.runtime, run_id, "AAA")
    await fail_symbol(served.runtime, run_id, "BBB", Stage.INGEST, "source down", attempts=3)
    status = run(served, publisher, "run", "status", run_id)
    assert status.exit_code == 0, status.stderr
    assert '"state": "FAILED"' in status.stdout
    assert '"last_error": "source down"' in status.stdout

    retried = run(served, publisher, "run", "retry", run_id, "--reason", "source back")
    assert retried.exit_code == 0, retried.stderr
    assert f"re-queued 1 failed tasks; run {run_id} is RUNNING" in retried.stdout

    cancelled = run(served, publisher, "run", "cancel", run_id, "--reason", "giving up")
    assert cancelled.exit_code == 0, cancelled.stderr
    assert f"cancelled run {run_id} and 3 unfinished tasks" in cancelled.stdout

    again = one_error_line(run(served, publisher, "run", "cancel", run_id, "--reason", "x"))
    assert "409" in again
    assert "CANCELLED" in again


async def test_run_commands_say_what_is_wrong_in_one_red_line(served: Served) -> None:
    reader = await new_api_key(served.runtime.database, role=Role.READER)
    no_key = one_error_line(run(served, None, "run", "list"))
    assert "401" in no_key
    assert "X-API-Key" in no_key
    forbidden = one_error_line(
        run(served, reader, "run", "start", "--symbols", "AAA", "--as-of", "2026-11-20")
    )
    assert "403" in forbidden
    assert "publisher" in forbidden
    missing = one_error_line(run(served, reader, "run", "status", "nope"))
    assert "404" in missing
    bad_symbol = one_error_line(run(served, reader, "run", "list", "--state", "sideways"))
    assert "422" in bad_symbol
    assert "state" in bad_symbol


async def test_run_start_for_an_exchange_holiday_fails_naming_the_next_session(
    served: Served,
) -> None:
    publisher = await new_api_key(served.runtime.database, role=Role.PUBLISHER)

    refused = run(served, publisher, "run", "start", "--symbols", "AAA", "--as-of", "2008-11-27")

    line = one_error_line(refused)
    assert line.endswith(
        "as_of: 2008-11-27 is not a XNYS trading day (Thanksgiving) — the next is 2008-11-28"
    )
    assert "422" in line


def test_run_command_against_nothing_listening_says_so(tmp_path: Path) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    result = CliRunner().invoke(
        cli, ["run", "list", "--url", f"http://127.0.0.1:{port}", "--api-key", "k" * 30]
    )
    line = one_error_line(result)
    assert "cannot reach" in line
    assert "orchestrator running" in line
