"""`marketsense inspect run` on the embedded default: tasks, objects read back against their
checksums, outbox events; a tampered object is named and fails the command."""

from __future__ import annotations

import asyncio
from pathlib import Path

from marketsense.cli.stage_run import StageSettings
from marketsense.common.db.engine import Database
from marketsense.common.db.models import OutboxMessage
from marketsense.common.store.local import FileStore
from tests.behaviour.cli.test_stage_commands import RUN_ID, recorded_run, stage_cli
from tests.cli_support import invoke, one_error_line
from tests.conftest import TEST_AS_OF


def add_unreadable_outbox_row(database: Database, *, key: str) -> None:
    """An outbox row whose value is no envelope, as a dead letter of a broken record is."""

    async def add() -> None:
        async with database.session() as session:
            session.add(
                OutboxMessage(
                    source="processing", topic="raw.ready.dlq", key=key, value=b"{not json"
                )
            )
            await session.commit()
        await database.dispose()

    asyncio.run(add())


def test_inspect_verifies_every_object_and_names_a_tampered_one(tmp_path: Path) -> None:
    home = tmp_path / "home"
    database = recorded_run(home, ["AAA", "BBB"])
    code, _, err = stage_cli(
        home, "stage", "run", "ingest", "--run-id", RUN_ID, "--symbol", "AAA", "--write"
    )
    assert code == 0, err

    # A dead letter's copy of an unreadable record, keyed by the symbol, belongs to no run.
    add_unreadable_outbox_row(database, key="AAA")

    code, out, err = stage_cli(home, "inspect", "run", RUN_ID, "--symbol", "aaa")
    assert code == 0, err
    assert f"run {RUN_ID} (RUNNING, as of {TEST_AS_OF}), symbol AAA" in out
    assert "ingest: SUCCESS, 1 attempt(s)" in out
    assert "process: PENDING, 0 attempt(s)" in out
    assert out.count(": checksum ok") == 2
    assert "1 raw.ready on raw.ready from ingestion" in out
    assert "dead letters (0)" in out

    store = FileStore(StageSettings(home=home).resolved_object_store_url())
    bars = store.root / f"raw/{TEST_AS_OF}/{RUN_ID}/AAA/bars.parquet"
    bars.write_bytes(bars.read_bytes()[:-1] + b"\0")
    result = invoke(
        "inspect", "run", RUN_ID, "--symbol", "AAA", env={"MARKETSENSE_HOME": str(home)}
    )
    assert "texts.parquet" in result.stdout
    assert result.stdout.count(": checksum ok") == 1
    assert "bars.parquet" in result.stdout
    assert "checksum mismatch: stored object has sha256" in result.stdout
    assert "1 object(s) missing or failing their checksum" in one_error_line(result)

    # Nothing recorded yet for BBB: its tasks show, and no object is claimed.
    code, out, _ = stage_cli(home, "inspect", "run", RUN_ID, "--symbol", "BBB")
    assert code == 0
    assert "objects (0):" in out
    assert "ingest: PENDING, 0 attempt(s)" in out


def test_inspect_refuses_an_unknown_run_or_symbol(tmp_path: Path) -> None:
    home = tmp_path / "home"
    recorded_run(home, ["AAA"])
    env = {"MARKETSENSE_HOME": str(home)}

    unknown_run = one_error_line(invoke("inspect", "run", "nope", "--symbol", "AAA", env=env))
    unknown_symbol = one_error_line(invoke("inspect", "run", RUN_ID, "--symbol", "ZZZ", env=env))

    assert "no run nope" in unknown_run
    assert f"run {RUN_ID} has no symbol ZZZ; its symbols: AAA" in unknown_symbol
