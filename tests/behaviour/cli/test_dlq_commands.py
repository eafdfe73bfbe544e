"""`marketsense dlq list|replay` against an orchestrator served on loopback."""

from __future__ import annotations

import json

from typer.testing import Result

from marketsense.common.auth import Role
from marketsense.common.runtime import Runtime
from tests.behaviour.cli.conftest import Served
from tests.cli_support import invoke, one_error_line
from tests.dead_letters_support import dlq_record, index_record
from tests.model_registry_rows import new_api_key


def _cli(url: str, key: str, *args: str) -> Result:
    """Invoke `marketsense ARGS` against the served orchestrator, wide enough that tables print
    whole cells (rich reads COLUMNS when it prints)."""
    return invoke(*args, key=key, env={"MARKETSENSE_ORCHESTRATOR_URL": url, "COLUMNS": "250"})


async def test_dlq_commands_list_and_replay_through_the_api(
    served: Served,
) -> None:
    url, settings = served.url, served.settings
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

        denied = one_error_line(
            _cli(url, reader, "dlq", "replay", "--id", str(row.id), "--reason", "x")
        )
        assert "403" in denied
        replayed = _cli(url, publisher, "dlq", "replay", "--id", str(row.id), "--reason", "fixed")
        assert replayed.exit_code == 0, replayed.stderr
        assert f"replayed 1 dead letter(s): {row.id}" in replayed.stdout
        shown = _cli(url, reader, "dlq", "list", "--replayed", "--json")
        assert json.loads(shown.stdout)["items"][0]["replayed_by"] == "on-call"

        again = one_error_line(
            _cli(url, publisher, "dlq", "replay", "--id", str(row.id), "--reason", "x")
        )
        assert "409" in again
        forced = _cli(
            url, publisher, "dlq", "replay", "--id", str(row.id), "--reason", "x", "--force"
        )
        assert forced.exit_code == 0, forced.stderr
        neither = one_error_line(_cli(url, publisher, "dlq", "replay", "--reason", "x"))
        assert "--run-id" in neither
        anonymous = one_error_line(_cli(url, "", "dlq", "list"))
        assert "401" in anonymous
        unreachable = one_error_line(
            _cli("http://127.0.0.1:9", reader, "dlq", "list", "--url", "http://127.0.0.1:9")
        )
        assert "cannot reach" in unreachable
    finally:
        await runtime.database.dispose()


async def test_dlq_list_says_when_there_is_nothing_and_shows_who_replayed(
    served: Served,
) -> None:
    url, runtime = served.url, served.runtime
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
    served: Served,
) -> None:
    url, runtime = served.url, served.runtime
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
    assert "not both" in one_error_line(two_ways)
