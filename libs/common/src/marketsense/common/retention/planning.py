"""Planning a retention pass: the one list of what it deletes, which a dry run prints and a real
pass then deletes, and how much expired data it keeps and why."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.models import (
    AlertRecord,
    AliasChange,
    DeadLetter,
    FeatureSet,
    OperatorAction,
    Outcome,
    Prediction,
    RawObject,
    RegistryAudit,
    RetentionPass,
)
from marketsense.common.retention.config import RetentionSettings
from marketsense.common.retention.facts import held_runs, registry_windows, run_facts
from marketsense.common.retention.policy import (
    RunFacts,
    Window,
    cutoff,
    expired,
    object_keep_reason,
    run_keep_reason,
)

OBJECT_TABLES: dict[str, type[RawObject] | type[FeatureSet]] = {
    "raw_objects": RawObject,
    "features": FeatureSet,
}
"""Tables whose rows each record one object: the object goes first, then the row."""
AUDIT_TABLES = (
    ("operator_actions", OperatorAction, OperatorAction.at),
    ("registry_audit", RegistryAudit, RegistryAudit.at),
    ("alias_changes", AliasChange, AliasChange.at),
    ("alerts", AlertRecord, AlertRecord.last_at),
    ("retention_passes", RetentionPass, RetentionPass.finished_at),
)


@dataclass(frozen=True)
class Doomed:
    """One thing a pass deletes: a row, and the object it records when it records one."""

    table: str
    id: str
    run_id: str | None = None
    key: str | None = None
    size: int = 0
    as_of: dt.date | None = None


@dataclass
class Plan:
    """What a pass deletes, in order, and how many expired things it keeps, by reason."""

    objects: list[Doomed] = field(default_factory=list)
    rows: list[Doomed] = field(default_factory=list)
    kept: Counter[str] = field(default_factory=Counter)

    def all(self) -> list[Doomed]:
        """Everything the pass deletes, objects first."""
        return [*self.objects, *self.rows]


@dataclass(frozen=True)
class Facts:
    """What decides whether an expired thing may go."""

    runs: dict[str, RunFacts]
    held: set[str]
    windows: list[Window]
    now: dt.datetime
    retry_days: int

    def run_reason(self, run_id: str | None) -> str | None:
        """Why the run keeps its things; None when it has none (or no run is named)."""
        run = self.runs.get(run_id or "")
        if run is None:
            return "held" if run_id in self.held else None
        held = run_id in self.held
        return run_keep_reason(run, held=held, now=self.now, retry_days=self.retry_days)


async def read_facts(session: AsyncSession, settings: RetentionSettings, now: dt.datetime) -> Facts:
    """Every run's facts, the holds and the registry's windows, read now."""
    return Facts(
        runs=await run_facts(session),
        held=await held_runs(session),
        windows=await registry_windows(session),
        now=now,
        retry_days=settings.retention_retry_days,
    )


async def plan_pass(
    session: AsyncSession,
    settings: RetentionSettings,
    *,
    now: dt.datetime,
    key_for: Callable[[str], str],
) -> Plan:
    """What a pass at `now` deletes under the settings; `key_for` maps a row's URI to its key."""
    facts = await read_facts(session, settings, now)
    plan = Plan()
    for table, days in (
        ("raw_objects", settings.retention_raw_days),
        ("features", settings.retention_features_days),
    ):
        await _plan_objects(session, plan, facts, table=table, days=days, key_for=key_for)
    outcomes = await _plan_outcomes(session, plan, facts, settings.retention_outcomes_days)
    await _plan_predictions(session, plan, facts, settings.retention_predictions_days, outcomes)
    await _plan_dead_letters(session, plan, facts, settings.retention_dead_letters_days)
    await _plan_runs(session, plan, facts, settings.retention_runs_days)
    limit = cutoff(now, settings.retention_audit_days)
    for table, model, stamp in AUDIT_TABLES:
        if limit is not None:
            ids = await session.scalars(select(model.id).where(stamp < limit).order_by(model.id))
            plan.rows += [Doomed(table, str(row_id)) for row_id in ids]
    return plan


async def _plan_objects(
    session: AsyncSession,
    plan: Plan,
    facts: Facts,
    *,
    table: str,
    days: int | None,
    key_for: Callable[[str], str],
) -> None:
    limit = cutoff(facts.now, days)
    if limit is None:
        return
    model = OBJECT_TABLES[table]
    rows = await session.execute(
        select(model.id, model.run_id, model.as_of, model.uri, model.size)
        .where(model.created_at < limit)
        .order_by(model.id)
    )
    for row_id, run_id, as_of, uri, size in rows:
        reason = object_keep_reason(
            table=table, as_of=as_of, run_reason=facts.run_reason(run_id), windows=facts.windows
        )
        if reason is not None:
            plan.kept[reason] += 1
            continue
        plan.objects.append(Doomed(table, str(row_id), run_id, key_for(uri), size, as_of))


async def _plan_outcomes(
    session: AsyncSession, plan: Plan, facts: Facts, days: int | None
) -> set[int]:
    """Plan expired outcomes; return the ids of the predictions they belong to."""
    limit = cutoff(facts.now, days)
    if limit is None:
        return set()
    rows = await session.execute(
        select(Outcome.id, Outcome.prediction_id, Outcome.run_id)
        .where(Outcome.created_at < limit)
        .order_by(Outcome.id)
    )
    freed: set[int] = set()
    for row_id, prediction_id, run_id in rows:
        if facts.run_reason(run_id) is None:
            plan.rows.append(Doomed("outcomes", str(row_id), run_id))
            freed.add(prediction_id)
    return freed


async def _plan_predictions(
    session: AsyncSession, plan: Plan, facts: Facts, days: int | None, freed: set[int]
) -> None:
    limit = cutoff(facts.now, days)
    if limit is None:
        return
    has_outcome = select(Outcome.prediction_id).where(Outcome.prediction_id == Prediction.id)
    rows = await session.execute(
        select(Prediction.id, Prediction.run_id, has_outcome.exists())
        .where(Prediction.created_at < limit)
        .order_by(Prediction.id)
    )
    for row_id, run_id, with_outcome in rows:
        # A prediction goes only with its outcome: the outcome would otherwise be cascaded away.
        if facts.run_reason(run_id) is None and (not with_outcome or row_id in freed):
            plan.rows.append(Doomed("predictions", str(row_id), run_id))


async def _plan_dead_letters(
    session: AsyncSession, plan: Plan, facts: Facts, days: int | None
) -> None:
    limit = cutoff(facts.now, days)
    if limit is None:
        return
    rows = await session.execute(
        select(DeadLetter.id, DeadLetter.run_id, DeadLetter.replayed_at).order_by(DeadLetter.id)
    )
    for row_id, run_id, replayed_at in rows:
        if dead_letter_expired(facts, run_id=run_id, replayed_at=replayed_at, limit=limit):
            plan.rows.append(Doomed("dead_letters", str(row_id), run_id))


def dead_letter_expired(
    facts: Facts, *, run_id: str | None, replayed_at: dt.datetime | None, limit: dt.datetime
) -> bool:
    """Whether a dead letter may go: replayed before the cutoff, or its run finished before it
    and can no longer be retried; never while its run is held, live or retryable."""
    if facts.run_reason(run_id) is not None:
        return False
    if replayed_at is not None:
        return expired(replayed_at, limit)
    run = facts.runs.get(run_id or "")
    return run is not None and expired(run.finished_at, limit)


async def _plan_runs(session: AsyncSession, plan: Plan, facts: Facts, days: int | None) -> None:
    limit = cutoff(facts.now, days)
    if limit is None:
        return
    remaining = await rows_per_run(session)
    remaining.subtract(Counter(d.run_id for d in plan.all() if d.run_id and _cascades(d.table)))
    for run in sorted(facts.runs.values(), key=lambda r: r.id):
        if not expired(run.finished_at, limit) or facts.run_reason(run.id) is not None:
            continue
        # Deleting a run cascades to its objects' rows: only a run with none left may go.
        if remaining[run.id] <= 0:
            plan.rows.append(Doomed("runs", run.id, run.id))


def _cascades(table: str) -> bool:
    return table in RUN_CHILDREN


RUN_CHILDREN = ("raw_objects", "features", "predictions")
"""Tables whose rows a run's deletion would cascade away."""


async def rows_per_run(session: AsyncSession, run_ids: Sequence[str] | None = None) -> Counter[str]:
    """How many raw object, feature and prediction rows each run has."""
    counts: Counter[str] = Counter()
    for model in (RawObject, FeatureSet, Prediction):
        query = select(model.run_id, func.count()).group_by(model.run_id)
        if run_ids is not None:
            query = query.where(model.run_id.in_(list(run_ids)))
        for run_id, count in await session.execute(query):
            counts[run_id] += count
    return counts
