"""Monitoring and the registry in one app, as the embedded pipeline runs them, with a production
and a challenger version registered through the registry's API, and finished runs in which both
versions predicted: for the suites of challenges and their routes."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from marketsense.common.app import create_app
from marketsense.common.auth import KEY_HEADER, Role
from marketsense.common.bus import Subscription
from marketsense.common.db.models import Prediction
from marketsense.common.events import Envelope, ModelPromoted
from marketsense.common.registry_calls import IN_PROCESS_URL, InProcessTransport, RegistryCalls
from marketsense.common.runtime import Runtime
from marketsense.common.store import ObjectStore
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.models.bundles import pack_bundle
from marketsense.models.files import MANIFEST_FILE
from marketsense.monitoring.app import create_component as monitoring
from marketsense.monitoring.challenges import Challenges
from marketsense.monitoring.config import MonitoringSettings
from marketsense.monitoring.deps import MonitoringState
from marketsense.monitoring.loop import MonitoringLoop
from marketsense.registry.app import create_component as registry
from marketsense.registry.config import RegistrySettings
from tests.artifacts import list_manifest_files
from tests.backends import object_store_fields
from tests.behaviour.monitoring.market_runs import MODEL, AlertRecorder, finished_run, sessions
from tests.gate_support import add_outcome_set, weighted_predictor
from tests.model_registry_rows import new_api_key

DAYS = sessions(dt.date(2026, 9, 1), dt.date(2026, 9, 15))
"""10 sessions (Labor Day closed): a backfill over them resolves 9 outcome days per version."""
SYMBOLS = [f"C{i:02d}" for i in range(12)]


class ChallengeSettings(RegistrySettings, MonitoringSettings):
    """The registry's and monitoring's settings in one object, as the embedded pipeline has."""


@dataclass
class Harness:
    """The app under test, its runtime, an approver's client, and what it announced."""

    app: FastAPI
    runtime: Runtime
    api: httpx.AsyncClient
    alerts: AlertRecorder
    loop: MonitoringLoop
    calls: RegistryCalls
    transport: InProcessTransport
    promoted: list[ModelPromoted] = field(default_factory=list)

    @property
    def challenges(self) -> Challenges:
        """The monitoring component's challenges."""
        state = self.app.state.monitoring
        assert isinstance(state, MonitoringState)
        return state.challenges


@contextlib.asynccontextmanager
async def harness(
    tmp_path: Path,
    database_url: str,
    store: ObjectStore,
    *,
    in_process: bool = True,
    **values: Any,
) -> AsyncIterator[Harness]:
    """Registry and monitoring in one started app; without `in_process` monitoring is given no
    way to reach the registry."""
    settings = ChallengeSettings.model_validate(
        {
            "home": tmp_path / "home",
            "database_url": database_url,
            "api_key_cache_seconds": 0,
            "registry_min_holdout_auc": 0.0,
            "challenge_days": 8,
            **object_store_fields(store.base_uri),
        }
        | values
    )
    runtime = Runtime(settings, service="pipeline", relay_all=True)
    transport = InProcessTransport()
    alerts = AlertRecorder()
    components = [
        registry(runtime, settings),
        monitoring(
            runtime,
            settings,
            notifier=alerts,
            registry_transport=transport if in_process else None,
        ),
    ]
    app = create_app(runtime, components, title="registry and monitoring")
    transport.app = app
    promoted: list[ModelPromoted] = []

    async def record(_envelope: Envelope, payload: ModelPromoted) -> None:
        promoted.append(payload)

    runtime.bus.subscribe(Subscription.of(ModelPromoted, record, group="test-promotions"))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api,
    ):
        key = await new_api_key(runtime.database, role=Role.APPROVER)
        transport.api_key = key
        api.headers[KEY_HEADER] = key
        calls = RegistryCalls(IN_PROCESS_URL, transport=transport)
        state = app.state.monitoring
        assert isinstance(state, MonitoringState)
        loop = MonitoringLoop(runtime, settings, alerts, state.challenges)
        try:
            yield Harness(app, runtime, api, alerts, loop, calls, transport, promoted)
        finally:
            await calls.aclose()


async def register(h: Harness, tmp_path: Path, *, champion: float, challenger: float) -> None:
    """Register version 1 (weights of skill `champion`) as production and version 2 (skill
    `challenger`) as the challenger, measured on an evaluation set of known outcomes."""
    await add_outcome_set(h.runtime)
    created = await h.api.post(
        "/v1/models", json={"name": MODEL, "kind": "predictor", "description": "challenged"}
    )
    assert created.status_code == 201, created.text
    for version, skill, alias in ((1, champion, "production"), (2, challenger, "challenger")):
        folder = weighted_predictor(
            tmp_path / f"v{version}", skill=skill, noise_seed=version, name=MODEL
        )
        list_manifest_files(folder)
        pushed = await h.calls.push_version(
            MODEL, manifest=(folder / MANIFEST_FILE).read_bytes(), bundle=pack_bundle(folder)
        )
        assert pushed["version"] == version
        await h.calls.move_alias(MODEL, alias, version=version, reason="set up by the test")


async def shadowed_backfill(h: Harness, *, flipped: bool) -> str:
    """A finished backfill over DAYS in which production (version 1) scored by the texts' tone
    and the challenger (version 2) against it; the texts lead the returns, or (`flipped`) lag
    them inversely from before the first day. The run's id."""
    market = SimulatedMarket(
        seed=11, regime_change=DAYS[0] - dt.timedelta(days=30) if flipped else None
    )
    run_id = await finished_run(
        h.runtime, market, start=DAYS[0], as_of=DAYS[-1], symbols=SYMBOLS, version="1"
    )
    async with h.runtime.transaction() as session:
        champion = list(
            await session.scalars(select(Prediction).where(Prediction.run_id == run_id))
        )
        session.add_all(
            Prediction(
                run_id=run_id,
                symbol=row.symbol,
                as_of=row.as_of,
                horizon_days=1,
                prob_up=1.0 - row.prob_up,
                signal="hold",
                model_name=MODEL,
                model_version="2",
            )
            for row in champion
        )
    return run_id
