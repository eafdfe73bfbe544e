"""Monitoring's consumer: a run that ends SUCCESS or PARTIAL, announced on the bus as the
orchestrator announces it (through its outbox), is monitored; other state changes are not."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from marketsense.common.app import create_app
from marketsense.common.db.engine import Database
from marketsense.common.db.models import Outcome
from marketsense.common.db.outbox import add_event
from marketsense.common.events import Envelope, RunStateChanged
from marketsense.common.runtime import Runtime
from marketsense.common.states import RunState
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.monitoring.app import create_component
from marketsense.monitoring.config import MonitoringSettings
from marketsense.monitoring.consumers import subscriptions
from tests.backends import real_servers
from tests.behaviour.monitoring.market_runs import AlertRecorder, finished_run, sessions
from tests.conftest import eventually

DAYS = sessions(dt.date(2026, 9, 1), dt.date(2026, 9, 15))
SYMBOLS = ["ACME", "BOLT", "CRUX"]


class Runs:
    """Stands in for the monitoring loop: remembers the runs it was asked to monitor."""

    def __init__(self) -> None:
        self.finished: list[str] = []

    async def run_finished(self, run_id: str) -> None:
        """Remember the run."""
        self.finished.append(run_id)


@pytest.mark.parametrize(
    ("to_state", "monitored"),
    [
        (RunState.SUCCESS, True),
        (RunState.PARTIAL, True),
        (RunState.FAILED, False),
        (RunState.CANCELLED, False),
        (RunState.RUNNING, False),
    ],
)
async def test_only_a_run_that_finished_with_its_data_is_monitored(
    tmp_path: Path, to_state: RunState, monitored: bool
) -> None:
    runtime = Runtime(MonitoringSettings(home=tmp_path), service="monitoring")
    runs = Runs()
    [subscription] = subscriptions(runtime, runs)  # type: ignore[arg-type]
    change = RunStateChanged(from_state="RUNNING", to_state=to_state, as_of=DAYS[-1])
    envelope = Envelope.wrap(change, run_id="r1")

    assert subscription.handler is not None
    await subscription.handler(envelope, change)

    assert runs.finished == (["r1"] if monitored else [])
    assert subscription.group.endswith(".monitoring")


async def test_a_run_announced_as_finished_on_the_bus_gets_its_outcomes(
    database: Database, database_url: str, tmp_path: Path, prefix: str
) -> None:
    fields: dict[str, object] = {"home": tmp_path, "database_url": database_url}
    if not database.is_sqlite:  # PostgreSQL comes with Kafka and S3, as deployed
        fields |= real_servers(database_url=database_url, prefix=prefix)
    settings = MonitoringSettings.model_validate(fields)
    runtime = Runtime(settings, service="monitoring")
    app = create_app(
        runtime, [create_component(runtime, settings, notifier=AlertRecorder())], title="m"
    )
    async with app.router.lifespan_context(app):
        run_id = await finished_run(
            runtime, SimulatedMarket(seed=2), start=DAYS[0], as_of=DAYS[-1], symbols=SYMBOLS
        )
        async with runtime.transaction() as session:
            change = RunStateChanged(from_state="RUNNING", to_state="SUCCESS", as_of=DAYS[-1])
            add_event(session, Envelope.wrap(change, run_id=run_id), source="monitoring")

        async def resolved() -> bool:
            async with runtime.database.session() as session:
                found = await session.scalar(select(func.count()).select_from(Outcome))
            return found == len(SYMBOLS) * (len(DAYS) - 1)

        await eventually(resolved)
