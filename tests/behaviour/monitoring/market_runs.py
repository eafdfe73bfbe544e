"""Finished runs on the simulated market for monitoring's suites: ingestion stores each symbol's
bars as in production, and each (symbol, day) gets the prediction of a model that reads the
texts' true tone (the planted signal), without the cost of processing and prediction."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from marketsense.common.alerts import Alert
from marketsense.common.calendar import exchange_calendar
from marketsense.common.db.models import Prediction, Run, Task
from marketsense.common.runtime import Runtime
from marketsense.common.states import RunState, Stage, TaskState
from marketsense.common.store import ObjectStore
from marketsense.ingestion.service import ingest_symbol
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.monitoring.config import MonitoringSettings
from tests.backends import object_store_fields

SYMBOLS = [f"S{i:02d}" for i in range(10)]
LOOKBACK = 5
"""Bars before a run's first day: outcomes need none, so the files stay small."""
MODEL, VERSION = "baseline-predictor", "v-tone"


@dataclass
class AlertRecorder:
    """Stands in for the alerter: remembers each alert it is asked to send."""

    alerts: list[Alert] = field(default_factory=list)

    async def notify(self, alert: Alert) -> bool:
        """Remember the alert."""
        self.alerts.append(alert)
        return True


def sessions(start: dt.date, end: dt.date) -> list[dt.date]:
    """The exchange's sessions from `start` to `end`."""
    return list(exchange_calendar().sessions(start, end))


def monitoring_settings(home: Path, database_url: str, store: ObjectStore) -> MonitoringSettings:
    """Monitoring's settings on a test's database and object store."""
    return MonitoringSettings.model_validate(
        {"home": home, "database_url": database_url, **object_store_fields(store.base_uri)}
    )


async def finished_run(
    runtime: Runtime,
    market: SimulatedMarket,
    *,
    as_of: dt.date,
    start: dt.date | None = None,
    symbols: list[str] = SYMBOLS,
    version: str = VERSION,
) -> str:
    """A run (a backfill from `start`, else daily) whose bars ingestion stored, with one tone
    prediction per symbol and day, marked SUCCESS; its id."""
    run_id = str(uuid.uuid4())
    kind = "daily" if start is None else "backfill"
    async with runtime.transaction() as session:
        session.add(
            Run(
                id=run_id,
                as_of=as_of,
                start=start,
                state=RunState.RUNNING,
                symbols=len(symbols),
                kind=kind,
            )
        )
        await session.flush()
        for symbol in symbols:
            session.add(
                Task(run_id=run_id, symbol=symbol, stage=Stage.INGEST, state=TaskState.PENDING)
            )
    for symbol in symbols:
        await ingest_symbol(
            runtime=runtime,
            source=market,
            run_id=run_id,
            symbol=symbol,
            as_of=as_of,
            lookback_days=LOOKBACK,
            start=start,
        )
    days = sessions(start or as_of, as_of)
    async with runtime.transaction() as session:
        for symbol in symbols:
            tone = market.daily_tone(symbol, as_of=as_of, days=len(days))
            session.add_all(
                Prediction(
                    run_id=run_id,
                    symbol=symbol,
                    as_of=day,
                    horizon_days=1,
                    prob_up=0.5 + 0.4 * float(tone[day]),
                    signal="hold",
                    model_name=MODEL,
                    model_version=version,
                )
                for day in days
            )
        run = await session.get(Run, run_id)
        assert run is not None
        run.state = RunState.SUCCESS
    return run_id
