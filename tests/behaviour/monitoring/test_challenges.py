"""Champion against challenger on every database and object store: after a finished run in
which both versions predicted, a challenger that beats production by the margin is promoted
through the registry's gate (which announces it), one that does not, or that the gate refuses,
is rejected and archived, and without a registry to call the figures are kept and nothing moves."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from marketsense.common.store import ObjectStore
from marketsense.monitoring.challenge_store import list_challenges
from tests.behaviour.monitoring.challenge_support import (
    DAYS,
    harness,
    register,
    shadowed_backfill,
)
from tests.behaviour.monitoring.market_runs import MODEL
from tests.conftest import eventually

pytestmark = pytest.mark.usefixtures("database")  # migrated and emptied for each test


async def test_a_challenger_beating_production_is_promoted_through_the_gate_once(
    tmp_path: Path, database_url: str, store: ObjectStore
) -> None:
    async with harness(tmp_path, database_url, store) as h:
        await register(h, tmp_path, champion=0.3, challenger=2.0)
        run_id = await shadowed_backfill(h, flipped=True)

        await h.loop.run_finished(run_id)
        await h.loop.run_finished(run_id)  # the run's end delivered again

        [challenge] = await list_challenges(h.runtime)
        assert (challenge.champion_version, challenge.challenger_version) == ("1", "2")
        assert (challenge.state, challenge.decided_by) == ("PROMOTED", "monitoring")
        assert (challenge.days, challenge.started_on) == (len(DAYS) - 1, DAYS[1])
        assert challenge.champion_sharpe is not None
        assert challenge.challenger_sharpe is not None
        assert challenge.challenger_sharpe - challenge.champion_sharpe >= 0.5
        assert challenge.reason is not None
        assert "over 8 shared outcome days" in challenge.reason
        production = await h.calls.alias(MODEL, "production")
        assert production is not None
        assert production["version"] == 2
        assert await h.calls.alias(MODEL, "challenger") is None

        async def announced() -> bool:
            return any(e.alias == "production" and e.version == "2" for e in h.promoted)

        await eventually(announced, timeout=10)
        [alert] = h.alerts.alerts
        assert alert.key == f"challenge:{MODEL}:2:PROMOTED"
        assert "promoted to production" in alert.title


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("store", ["file"], indirect=True)
async def test_a_challenger_that_loses_is_rejected_and_archived_with_its_figures(
    tmp_path: Path, database_url: str, store: ObjectStore
) -> None:
    async with harness(tmp_path, database_url, store) as h:
        await register(h, tmp_path, champion=0.3, challenger=2.0)
        run_id = await shadowed_backfill(h, flipped=False)

        await h.loop.run_finished(run_id)

        [challenge] = await list_challenges(h.runtime)
        assert (challenge.state, challenge.decided_by) == ("REJECTED", "monitoring")
        assert challenge.reason is not None
        assert "does not beat" in challenge.reason
        assert challenge.challenger_sharpe is not None
        assert challenge.champion_sharpe is not None
        assert challenge.challenger_sharpe < challenge.champion_sharpe
        version = (await h.api.get(f"/v1/models/{MODEL}/versions/2")).json()
        assert version["archived_at"] is not None
        assert challenge.reason in version["archive_reason"]
        production = await h.calls.alias(MODEL, "production")
        assert production is not None
        assert production["version"] == 1
        assert await h.calls.alias(MODEL, "challenger") is None
        assert [a.key for a in h.alerts.alerts] == [f"challenge:{MODEL}:2:REJECTED"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("store", ["file"], indirect=True)
async def test_a_winner_the_registry_gate_refuses_is_rejected_with_the_registry_reason(
    tmp_path: Path, database_url: str, store: ObjectStore
) -> None:
    async with harness(tmp_path, database_url, store) as h:
        # Better live, worse on the registry's evaluation set: the gate has the last word.
        await register(h, tmp_path, champion=2.0, challenger=-2.0)
        run_id = await shadowed_backfill(h, flipped=True)

        await h.loop.run_finished(run_id)

        [challenge] = await list_challenges(h.runtime)
        assert challenge.state == "REJECTED"
        assert challenge.reason is not None
        assert challenge.reason.startswith("the registry's gate refused the promotion")
        assert "below production version 1" in challenge.reason
        production = await h.calls.alias(MODEL, "production")
        assert production is not None
        assert production["version"] == 1
        assert h.promoted == [] or all(
            e.version != "2" or e.alias != "production" for e in h.promoted
        )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("store", ["file"], indirect=True)
async def test_without_a_registry_the_challenge_is_measured_and_waits(
    tmp_path: Path, database_url: str, store: ObjectStore, caplog: pytest.LogCaptureFixture
) -> None:
    async with harness(tmp_path, database_url, store, in_process=False) as h:
        await register(h, tmp_path, champion=0.3, challenger=2.0)
        run_id = await shadowed_backfill(h, flipped=True)

        with caplog.at_level(logging.WARNING, logger="marketsense.monitoring.challenges"):
            await h.loop.run_finished(run_id)

        [challenge] = await list_challenges(h.runtime)
        assert (challenge.state, challenge.days) == ("SHADOWING", len(DAYS) - 1)
        assert challenge.challenger_sharpe is not None
        assert challenge.champion_sharpe is not None
        assert "MARKETSENSE_REGISTRY_URL" in caplog.text
        assert "tried again after the next run" in caplog.text
        production = await h.calls.alias(MODEL, "production")
        assert production is not None
        assert production["version"] == 1
        assert h.alerts.alerts == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("store", ["file"], indirect=True)
async def test_a_registry_out_of_reach_leaves_the_winner_shadowing_until_the_next_run(
    tmp_path: Path, database_url: str, store: ObjectStore, caplog: pytest.LogCaptureFixture
) -> None:
    async with harness(tmp_path, database_url, store) as h:
        await register(h, tmp_path, champion=0.3, challenger=2.0)
        run_id = await shadowed_backfill(h, flipped=True)
        app = h.transport.app
        h.transport.app = None  # calls fail as an unreachable server's would

        with caplog.at_level(logging.WARNING, logger="marketsense.monitoring.challenges"):
            await h.loop.run_finished(run_id)
        [waiting] = await list_challenges(h.runtime)
        h.transport.app = app
        await h.loop.run_finished(run_id)  # the next run's end (here: the same, delivered again)

        assert waiting.state == "SHADOWING"
        assert "cannot reach the registry" in caplog.text
        assert "tried again after the next run" in caplog.text
        [promoted] = await list_challenges(h.runtime)
        assert promoted.state == "PROMOTED"
        production = await h.calls.alias(MODEL, "production")
        assert production is not None
        assert production["version"] == 2
        assert [a.key for a in h.alerts.alerts] == [f"challenge:{MODEL}:2:PROMOTED"]
