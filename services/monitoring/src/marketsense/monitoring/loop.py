"""The monitoring loop: after each finished run, outcomes, daily performance, the challenge of
a challenger version, the decay policy and drift, in that order, each step's failure kept from
undoing the others' work."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.alerts import Notifier
from marketsense.common.db.models import DecayAlert, DriftMeasurement, Outcome, Prediction
from marketsense.common.db.outbox import add_event
from marketsense.common.events import Envelope, RetrainRequested
from marketsense.common.runtime import Runtime
from marketsense.monitoring.alerts import decay_alert, drift_alert
from marketsense.monitoring.challenge_store import challengers
from marketsense.monitoring.challenges import Challenges
from marketsense.monitoring.config import MonitoringSettings
from marketsense.monitoring.decay import DecayPolicy, judge_from
from marketsense.monitoring.drift_persistence import latest_drift, persistent_drift
from marketsense.monitoring.drift_store import measure_run_drift
from marketsense.monitoring.outcomes import resolve_outcomes
from marketsense.monitoring.performance_reads import daily_frame
from marketsense.monitoring.performance_store import update_performance
from marketsense.monitoring.performance_types import DecayFinding

log = logging.getLogger(__name__)


class MonitoringIncomplete(Exception):
    """Some steps of a finished run's monitoring failed; the bus delivers the run again, and the
    steps that worked find their work done."""


class MonitoringLoop:
    """What monitoring does when a run finishes (daily or backfill, SUCCESS or PARTIAL)."""

    def __init__(
        self,
        runtime: Runtime,
        settings: MonitoringSettings,
        alerter: Notifier,
        challenges: Challenges | None = None,
    ):
        self.runtime = runtime
        self.settings = settings
        self.alerter = alerter
        self.challenges = challenges
        self.model = settings.monitored_model
        self.policy = DecayPolicy.from_settings(settings)

    async def run_finished(self, run_id: str) -> None:
        """Resolve outcomes, update daily performance, advance a challenge, judge decay, measure
        drift; raise MonitoringIncomplete (retryable) naming the steps that failed, after trying
        them all."""
        failed: list[tuple[str, Exception]] = []

        async def step(name: str, work: Callable[[], Awaitable[object]]) -> None:
            try:
                await work()
            except Exception as exc:
                log.exception("monitoring of run %s: %s failed", run_id, name)
                failed.append((name, exc))

        runtime, settings, model = self.runtime, self.settings, self.model
        await step("outcomes", partial(resolve_outcomes, runtime, run_id=run_id))
        for version in await self._resolved_or_predicting(run_id):
            work = partial(update_performance, runtime, settings, model=model, version=version)
            await step(f"performance of {version}", work)
        if self.challenges is not None:
            await step("challenge", self.challenges.after_run)
        shadowed = await self._challengers()
        for version in await self._predicting(run_id):
            if version not in shadowed:
                await step(f"decay of {version}", partial(self.judge_version, run_id, version))
        await step("drift", partial(self.measure_drift, run_id))
        if failed:
            names = ", ".join(name for name, _ in failed)
            raise MonitoringIncomplete(f"run {run_id}: {names} failed") from failed[0][1]

    async def measure_drift(self, run_id: str) -> None:
        """Measure the run's drift; one alert when a feature that is not quiet has drifted in
        each of the latest `drift_alert_runs` runs."""
        figures = await measure_run_drift(self.runtime, self.settings, run_id=run_id)
        if not any(figure.drifted for figure in figures):
            return
        async with self.runtime.database.session() as session:
            as_of, version = (
                await session.execute(
                    select(DriftMeasurement.as_of, DriftMeasurement.model_version)
                    .where(DriftMeasurement.run_id == run_id)
                    .where(DriftMeasurement.model_name == self.model)
                    .limit(1)
                )
            ).one()
        runs = self.settings.drift_alert_runs
        latest = await latest_drift(self.runtime, model=self.model, version=version, runs=runs)
        quiet = self.settings.drift_quiet_features
        lasting = {f.feature for f in persistent_drift(latest, runs=runs, quiet=quiet)}
        marked = [replace(figure, drifted=figure.feature in lasting) for figure in figures]
        alert = drift_alert(run_id=run_id, as_of=as_of, figures=marked, runs=runs)
        if alert is not None:
            await self.alerter.notify(alert)

    async def judge_version(self, run_id: str, version: str) -> DecayFinding | None:
        """Judge a version's daily figures on each outcome day the run brought (a backfill's
        days one by one, as daily runs would have); store every new finding, queue
        `retrain.requested` for the newest in the same transaction, and send one alert. The
        newest new finding, if any."""
        frame = await daily_frame(self.runtime, model=self.model, version=version)
        if frame.empty:
            return None
        first = await self._first_outcome_day(run_id, version) or frame.index[-1]
        async with self.runtime.database.session() as session:
            last_alert_day = await session.scalar(
                select(func.max(DecayAlert.day)).where(
                    DecayAlert.model_name == self.model,
                    DecayAlert.model_version == version,
                    DecayAlert.day < first,
                )
            )
        findings = judge_from(frame, self.policy, first=first, last_alert_day=last_alert_day)
        if not findings:
            return None
        async with self.runtime.transaction() as session:
            new = [
                found
                for found in findings
                if await _store_alert(session, model=self.model, version=version, found=found)
            ]
            if not new:
                return None  # a redelivery, or another replica, stored and announced them
            finding = new[-1]
            event = RetrainRequested(
                model_name=self.model,
                reason=f"{version}: {finding.reason}",
                window_start=finding.window_start,
                window_end=finding.window_end,
            )
            add_event(session, Envelope.wrap(event, run_id=run_id), source=self.runtime.service)
        log.warning("decay of %s %s on %s: %s", self.model, version, finding.day, finding.reason)
        await self.alerter.notify(decay_alert(model=self.model, version=version, finding=finding))
        return finding

    async def _challengers(self) -> set[str]:
        """Versions shadow-scored and never promoted: their challenges judge them, not the
        decay policy. None when they cannot be read (every version is judged then)."""
        try:
            return await challengers(self.runtime, self.model)
        except Exception:  # the decay step reads the database too and reports the fault
            log.warning("cannot read the challengers of %s", self.model, exc_info=True)
            return set()

    async def _first_outcome_day(self, run_id: str, version: str) -> dt.date | None:
        """The earliest outcome day of the version's outcomes the run resolved."""
        async with self.runtime.database.session() as session:
            return await session.scalar(
                select(func.min(Outcome.outcome_day)).where(
                    Outcome.resolved_by_run == run_id,
                    Outcome.model_name == self.model,
                    Outcome.model_version == version,
                )
            )

    async def _resolved_or_predicting(self, run_id: str) -> list[str]:
        """Versions of the monitored model with outcomes the run resolved, or that predicted in
        it (their earlier days may still wait for figures after a failed attempt)."""
        async with self.runtime.database.session() as session:
            resolved = await session.scalars(
                select(Outcome.model_version)
                .where(Outcome.resolved_by_run == run_id, Outcome.model_name == self.model)
                .distinct()
            )
            found = set(resolved)
        return sorted(found | set(await self._predicting(run_id)))

    async def _predicting(self, run_id: str) -> list[str]:
        """Versions of the monitored model that predicted in the run."""
        async with self.runtime.database.session() as session:
            found = await session.scalars(
                select(Prediction.model_version)
                .where(Prediction.run_id == run_id, Prediction.model_name == self.model)
                .distinct()
            )
            return sorted(found)


async def _store_alert(
    session: AsyncSession, *, model: str, version: str, found: DecayFinding
) -> bool:
    """Insert the decay alert unless the version has one for the day; whether it was new."""
    row = {
        "model_name": model,
        "model_version": version,
        "day": found.day,
        "window_start": found.window_start,
        "window_end": found.window_end,
        "observations": found.observations,
        "sharpe": found.sharpe,
        "benchmark_sharpe": found.benchmark_sharpe,
        "threshold": found.threshold,
        "confidence": found.confidence,
        "reason": found.reason,
    }
    keys = ["model_name", "model_version", "day"]
    if session.get_bind().dialect.name == "sqlite":
        lite = sqlite.insert(DecayAlert).values(row).on_conflict_do_nothing(index_elements=keys)
        return (await session.scalar(lite.returning(DecayAlert.id))) is not None
    pg = postgresql.insert(DecayAlert).values(row).on_conflict_do_nothing(index_elements=keys)
    return (await session.scalar(pg.returning(DecayAlert.id))) is not None
