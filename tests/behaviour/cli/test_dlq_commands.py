"""`marketsense dlq list|replay` against an orchestrator served on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from marketsense.cli.main import app as cli
from marketsense.common.auth import Role
from marketsense.common.runtime import Runtime
from marketsense.orchestrator.app import build_app
from marketsense.orchestrator.config import OrchestratorSettings
from tests.dead_letters_support import dlq_record, index_record
from tests.model_registry_rows import new_api_key
from tests.orchestrator_support import orchestrator_settings, served_on_loopback


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, OrchestratorSettings]]:
    """The orchestrator with its dead-letter index under uvicorn in a thread, on loopback."""
    settings = orchestrator_settings(
        tmp_path / "home", f"sqlite+aiosqlite:///{tmp_path / 'orchestrator.db'}"
    )
    with served_on_loopback(build_app(settings)) as url:
        yield url, settings


@pytest.fixture
async def runtime(served: tuple[str, OrchestratorSettings]) -> AsyncIterator[Runtime]:
    """A runtime (not started) on the served orchestrator's database."""
    _url, settings = served
    made = Runtime(settings, service="orchestrator")
    yield made
    await made.database.dispose()


def _cli(url: str, key: str, *args: str) -> Result:
    """Invoke `marketsense ARGS` against the served orchestrator; the key never shows."""
    # Wide enough that tables print whole cells (rich reads COLUMNS when it prints).
    environment = {
        "MARKETSENSE_ORCHESTRATOR_URL": url,
        "MARKETSENSE_API_KEY": key,
        "COLUMNS": "250",
    }
    result = CliRunner().invoke(cli, list(args), env=environment)
    if key:
        assert key not in result.stdout + result.stderr
    return result


def _one_error_line(result: Result) -> str:
    assert result.exit_code == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


async def test_dlq_commands_list_and_replay_through_the_api(
    served: tuple[str, OrchestratorSettings],
) -> None:
    url, settings = served
    runtime = Runtime(settings, service="orchestrator")
    try:
        reader = await new_api_key(runtime.database)
        publisher = await new_api_key(runtime.database, role=Role.PUBLISHER, name="on-call")
        row = await index_record(runtime, dlq_record(runtime, 7, b"{not json"))
        assert row is not None

        listed = _cli(url, reader, "dlq", "list")
        assert listed.exit_code == 0, listed.stderr
        assert "not JSON" in listed.stdout
        as_json = _cli(url, reader, "dlq", "list", "--not-replayed", "--json")
        (item,) = json.loads(as_json.stdout)["items"]
        assert (item["id"], item["original_topic"]) == (row.id, "ingest.requested")
        assert item["error"] == "UnreadableEvent: not JSON"

        denied = _one_error_line(
            _cli(url, reader, "dlq", "replay", "--id", str(row.id), "--reason", "x")
        )
        assert "403" in denied
        replayed = _cli(url, publisher, "dlq", "replay", "--id", str(row.id), "--reason", "fixed")
        assert replayed.exit_code == 0, replayed.stderr
        assert f"replayed 1 dead letter(s): {row.id}" in replayed.stdout
        shown = _cli(url, reader, "dlq", "list", "--replayed", "--json")
        assert json.loads(shown.stdout)["items"][0]["replayed_by"] == "on-call"

        again = _one_error_line(
            _cli(url, publisher, "dlq", "replay", "--id", str(row.id), "--reason", "x")
        )
        assert "409" in again
        forced = _cli(
            url, publisher, "dlq", "replay", "--id", str(row.id), "--reason", "x", "--force"
        )
        assert forced.exit_code == 0, forced.stderr
        neither = _one_error_line(_cli(url, publisher, "dlq", "replay", "--reason", "x"))
        assert "--run-id" in neither
        anonymous = _one_error_line(_cli(url, "", "dlq", "list"))
        assert "401" in anonymous
        unreachable = _one_error_line(
            _cli("http://127.0.0.1:9", reader, "dlq", "list", "--url", "http://127.0.0.1:9")
        )
        assert "cannot reach" in unreachable
    finally:
        await runtime.database.dispose()


async def test_dlq_list_says_when_there_is_nothing_and_shows_who_replayed(
    served: tuple[str, OrchestratorSettings], runtime: Runtime
) -> None:
    url, _settings = served
    reader = await new_api_key(runtime.database)
    publisher = await new_api_key(runtime.database, role=Role.PUBLISHER, name="night-shift")
    empty = _cli(url, reader, "dlq", "list")
    row = await index_record(runtime, dlq_record(runtime, 3, b"{not json"))
    assert row is not None
    assert (
        _cli(url, publisher, "dlq", "replay", "--id", str(row.id), "--reason", "x").exit_code == 0
    )

    table = _cli(url, reader, "dlq", "list", "--replayed")
    never = _cli(url, reader, "dlq", "list", "--not-replayed")

    assert empty.exit_code == 0, empty.stderr
    assert empty.stdout.strip() == "no dead letters"
    assert table.exit_code == 0, table.stderr
    assert "night-shift" in table.stdout
    assert str(row.id) in table.stdout
    assert never.stdout.strip() == "no dead letters"


async def test_dlq_replay_names_what_it_skipped_and_refuses_both_selections(
    served: tuple[str, OrchestratorSettings], runtime: Runtime
) -> None:
    url, _settings = served
    publisher = await new_api_key(runtime.database, role=Role.PUBLISHER)
    rows = [await index_record(runtime, dlq_record(runtime, n, b"{not json")) for n in (1, 2)]
    first, second = (row.id for row in rows if row is not None)
    assert _cli(url, publisher, "dlq", "replay", "--id", str(first), "--reason", "x").exit_code == 0

    both = _cli(
        url, publisher, "dlq", "replay", "--id", str(first), "--id", str(second), "--reason", "y"
    )
    as_json = _cli(
        url, publisher, "dlq", "replay", "--id", str(first), "--reason", "z", "--force", "--json"
    )
    two_ways = _cli(
        url, publisher, "dlq", "replay", "--id", str(first), "--run-id", "r", "--reason", "x"
    )

    assert both.exit_code == 0, both.stderr
    assert f"replayed 1 dead letter(s): {second}" in both.stdout
    assert f"skipped {first}: replayed before" in both.stdout
    assert [item["id"] for item in json.loads(as_json.stdout)["replayed"]] == [first]
    assert "not both" in _one_error_line(two_ways)
