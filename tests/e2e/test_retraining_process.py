"""The retraining worker as its own process on Kafka, PostgreSQL and S3, SIGKILLed while it
trains or pushes, at a moment drawn from a printed seed (`MARKETSENSE_E2E_SEED` repeats it): the
step it is killed in and a delay into it. Restarted, it takes the request again once the lease
runs out, and the request ends DONE with exactly one registry version for it, aliased
`challenger`."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from marketsense.common.auth import KEY_HEADER, Role
from marketsense.common.db.engine import Database
from marketsense.common.events import Envelope, RetrainRequested
from marketsense.common.runtime import Runtime
from marketsense.common.settings import CommonSettings
from marketsense.ingestion.sources.simulated import SimulatedMarket
from tests.backends import as_environment, real_servers
from tests.behaviour.monitoring.market_runs import sessions
from tests.conftest import eventually
from tests.e2e.processes import Services, running_services
from tests.model_registry_rows import new_api_key
from tests.retraining_support import stored_run

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

DAYS = sessions(dt.date(2026, 6, 1), dt.date(2026, 6, 24))
SYMBOLS = [f"K{i:02d}" for i in range(20)]
MODEL = "baseline-predictor"
LEASE_SECONDS = 3


async def _store_backfill(settings: dict[str, str], home: Path) -> str:
    """A finished backfill of the universe stored on the real servers; its id."""
    runtime = Runtime(CommonSettings.model_validate({"home": home, **settings}), service="e2e")
    await runtime.start_storage()
    try:
        market = SimulatedMarket(seed=3)
        return await stored_run(runtime, market, start=DAYS[0], as_of=DAYS[-1], symbols=SYMBOLS)
    finally:
        await runtime.stop()


async def _publish(settings: dict[str, str], home: Path, envelope: Envelope) -> None:
    """Publish one event on the test's Kafka topics."""
    runtime = Runtime(CommonSettings.model_validate({"home": home, **settings}), service="e2e")
    await runtime.bus.start()
    try:
        await runtime.bus.publish(envelope)
    finally:
        await runtime.stop()


async def _kill_mid_retrain(
    client: httpx.AsyncClient,
    worker: Services,
    settings: dict[str, str],
    home: Path,
    moment: tuple[str, float],
) -> dict[str, Any]:
    """Publish a request, SIGKILL the worker `moment[1]` seconds after the request reaches the
    state `moment[0]` (or a later one); the request as the API showed it just before the kill."""
    url = worker.url("retraining")
    request = RetrainRequested(
        model_name=MODEL, reason="e2e decay", window_start=DAYS[0], window_end=DAYS[-2]
    )
    await _publish(settings, home, Envelope.wrap(request))

    steps = ["TRAINING", "PUSHING", "DONE"]
    state, delay = moment

    async def reached() -> bool:
        items = (await client.get(f"{url}/v1/retrains")).json()["items"]
        return bool(items) and items[0]["state"] in steps[steps.index(state) :]

    await eventually(reached, interval=0.01)
    await asyncio.sleep(delay)
    [retrain] = (await client.get(f"{url}/v1/retrains")).json()["items"]
    worker.processes["retraining"].send_signal(signal.SIGKILL)
    worker.processes["retraining"].wait()
    return dict(retrain)


async def _outcome(client: httpx.AsyncClient, worker: Services, retrain_id: str) -> dict[str, Any]:
    """The request once it is DONE or FAILED."""
    url = f"{worker.url('retraining')}/v1/retrains/{retrain_id}"

    async def finished() -> bool:
        return (await client.get(url)).json()["state"] in {"DONE", "FAILED"}

    await eventually(finished, timeout=60, interval=0.2)
    found: dict[str, Any] = (await client.get(url)).json()
    return found


async def test_a_worker_killed_mid_retrain_is_replaced_and_the_request_registers_one_version(
    fresh_pg_database_url: str, prefix: str, tmp_path: Path
) -> None:
    seed = int(os.environ.get("MARKETSENSE_E2E_SEED", random.randrange(1_000_000)))
    print(f"MARKETSENSE_E2E_SEED={seed}")
    draw = random.Random(seed)
    moment = (draw.choice(["TRAINING", "PUSHING"]), draw.uniform(0.0, 0.2))
    settings = real_servers(
        database_url=fresh_pg_database_url, prefix=prefix, bucket="marketsense-e2e"
    )
    database = Database(fresh_pg_database_url)
    approver = await new_api_key(database, role=Role.APPROVER)
    await database.dispose()
    base = settings | {"home": str(tmp_path / "home"), "log_level": "INFO"}
    logs = {run: tmp_path / run for run in ("first", "second")}
    for folder in logs.values():
        folder.mkdir()

    with running_services(("registry",), as_environment(base), tmp_path) as registry:
        worker_env = as_environment(
            base
            | {
                "registry_url": registry.url("registry"),
                "registry_api_key": approver,
                "retraining_trainer": "logistic",
                "retraining_lease_seconds": str(LEASE_SECONDS),
                "retraining_poll_seconds": "0.5",
                "retraining_backoff_seconds": "0.5",
            }
        )
        models = f"{registry.url('registry')}/v1/models"
        async with httpx.AsyncClient(headers={KEY_HEADER: approver}, timeout=30) as client:
            with running_services(("retraining",), worker_env, logs["first"]) as worker:
                # The processes start while the backfill is stored.
                backfill = await _store_backfill(settings, tmp_path / "seed")
                await registry.wait_ready(client)
                await worker.wait_ready(client)
                created = await client.post(
                    models, json={"name": MODEL, "kind": "predictor", "description": "e2e"}
                )
                assert created.status_code == 201, created.text
                retrain = await _kill_mid_retrain(
                    client, worker, settings, tmp_path / "bus", moment
                )
            print(
                f"SIGKILLed {moment[1]:.2f} s into {moment[0]}: the request was {retrain['state']}"
            )
            with running_services(("retraining",), worker_env, logs["second"]) as restarted:
                await restarted.wait_ready(client)
                done = await _outcome(client, restarted, retrain["id"])
            versions = (await client.get(f"{models}/{MODEL}/versions")).json()["items"]
            challenger = (await client.get(f"{models}/{MODEL}/aliases/challenger")).json()

    assert done["state"] == "DONE", done["error"]
    ours = [
        v["version"]
        for v in versions
        if v["manifest"]["training"].get("retrain_id") == retrain["id"]
    ]
    assert ours == [done["version"]]
    assert challenger["version"] == done["version"]
    assert done["runs"] == [backfill]
    assert (done["rows"], done["days"]) == (len(SYMBOLS) * (len(DAYS) - 1), len(DAYS) - 1)
    if retrain["state"] != "DONE":
        # Killed mid-way: the restarted worker's attempt is the second.
        assert done["attempts"] == 2
