"""The retraining worker on every database and object store: a decay's request waits until the
stored runs hold enough days, then one run later trains on exactly what the pipeline stored,
pushes one registry version that names the retrain and its training set, and points
`challenger` at it; a redelivered request is the same request."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from marketsense.common.db.engine import Database
from marketsense.common.db.models import Retrain
from marketsense.common.events import Envelope, ObjectRef, RetrainRequested, RunStateChanged
from marketsense.common.parquet import from_parquet_bytes
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.retraining.store import Claim
from marketsense.retraining.worker import RetrainWorker
from tests.behaviour.monitoring.market_runs import sessions
from tests.behaviour.retraining.conftest import Running, WorkerSettings, running_worker
from tests.conftest import eventually
from tests.retraining_support import stored_run

DAYS = sessions(dt.date(2026, 6, 1), dt.date(2026, 6, 30))
SYMBOLS = [f"R{i:02d}" for i in range(20)]
MODEL = "baseline-predictor"


def _consumed(topic: str) -> float:
    """Events of a topic the worker's group took off the bus, over this process's life."""
    return sum(
        sample.value
        for family in REGISTRY.collect()
        if family.name == "marketsense_events_consumed"
        for sample in family.samples
        if sample.name.endswith("_total")
        and sample.labels["topic"] == topic
        and sample.labels["group"].endswith(".retraining")
    )


async def _retrains(worker: Running) -> list[dict[str, object]]:
    page = await worker.api.get("/v1/retrains")
    assert page.status_code == 200, page.text
    items: list[dict[str, object]] = page.json()["items"]
    return items


async def test_a_request_waits_for_enough_stored_days_then_registers_one_challenger(
    worker: Running,
) -> None:
    runtime, api = worker.runtime, worker.api
    market = SimulatedMarket(seed=11, regime_change=DAYS[5], regime_signal_factor=-1.0)
    created = await api.post(
        "/v1/models", json={"name": MODEL, "kind": "predictor", "description": "decays"}
    )
    assert created.status_code == 201, created.text
    # 16 sessions stored: 15 of them have their next session's close, one short of the minimum.
    backfill = await stored_run(runtime, market, start=DAYS[0], as_of=DAYS[15], symbols=SYMBOLS)
    request = Envelope.wrap(
        RetrainRequested(
            model_name=MODEL, reason="Sharpe decayed", window_start=DAYS[0], window_end=DAYS[14]
        )
    )
    before = _consumed(RetrainRequested.topic)

    await runtime.bus.publish(request)

    async def waiting() -> bool:
        return [r["state"] for r in await _retrains(worker)] == ["WAITING"]

    await eventually(waiting)
    [first] = await _retrains(worker)
    assert first["days"] == 15
    assert "fewer than retraining_min_days (16)" in str(first["error"])
    await runtime.bus.publish(request)  # delivered again
    await eventually(lambda: _consumed(RetrainRequested.topic) >= before + 2)

    daily = await stored_run(runtime, market, as_of=DAYS[16], symbols=SYMBOLS)
    ended = RunStateChanged(from_state="RUNNING", to_state="SUCCESS", as_of=DAYS[16])
    await runtime.bus.publish(Envelope.wrap(ended, run_id=daily))

    async def done() -> bool:
        found = await api.get(f"/v1/retrains/{first['id']}")
        return found.json()["state"] in {"DONE", "FAILED"}

    await eventually(done, timeout=120)
    retrain = (await api.get(f"/v1/retrains/{first['id']}")).json()
    assert retrain["state"] == "DONE", retrain["error"]
    assert [r["id"] for r in await _retrains(worker)] == [first["id"]]
    # Every symbol's 16 labelled days, from the backfill's features and the daily run's bars.
    assert (retrain["rows"], retrain["days"]) == (len(SYMBOLS) * 16, 16)
    assert retrain["runs"] == sorted([backfill, daily])
    assert retrain["attempts"] == 1
    stored = await runtime.store.get(
        ObjectRef(
            uri=runtime.store.uri_for(f"retraining/{first['id']}/training_set.parquet"),
            sha256=retrain["training_set_sha256"],
            size=len(
                await runtime.store.read_key(f"retraining/{first['id']}/training_set.parquet")
            ),
        )
    )
    table = from_parquet_bytes(stored)
    assert len(table) == retrain["rows"]
    assert sorted(set(table["date"])) == DAYS[:16]

    challenger = (await api.get(f"/v1/models/{MODEL}/aliases/challenger")).json()
    assert challenger["version"] == retrain["version"]
    versions = (await api.get(f"/v1/models/{MODEL}/versions")).json()["items"]
    assert [v["version"] for v in versions] == [retrain["version"]]
    training = versions[0]["manifest"]["training"]
    assert training["retrain_id"] == first["id"]
    assert training["training_set_sha256"] == retrain["training_set_sha256"]
    assert worker.alerts.alerts == []


async def test_a_worker_stopped_mid_attempt_ends_and_leaves_the_request_to_its_lease(
    settings: WorkerSettings,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    started = asyncio.Event()

    async def trains_until_stopped(_worker: RetrainWorker, _claim: Claim) -> None:
        started.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(RetrainWorker, "_attempt", trains_until_stopped)
    request = RetrainRequested(
        model_name=MODEL, reason="Sharpe decayed", window_start=DAYS[0], window_end=DAYS[14]
    )
    async with running_worker(settings) as worker:
        await worker.runtime.bus.publish(Envelope.wrap(request))
        await asyncio.wait_for(started.wait(), timeout=30)
        # Leaving the block stops the app while the attempt runs.

    # A stop is not a failed attempt: nothing is retried or failed, the lease stays with the
    # stopped worker until it runs out, and the app's stop did not wait on a stuck loop.
    async with database.session() as session:
        [retrain] = (await session.scalars(select(Retrain))).all()
    assert (retrain.state, retrain.attempts, retrain.error) == ("TRAINING", 1, None)
    assert "did not stop" not in caplog.text
