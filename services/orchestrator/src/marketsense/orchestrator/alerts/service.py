"""The orchestrator's alerts, each in text that says what failed and the command that fixes it."""

from __future__ import annotations

import datetime as dt
import logging

from marketsense.common.alerts import Alert, Notifier
from marketsense.common.db.models import DeadLetter
from marketsense.orchestrator.runs.schemas import FailedSymbol

log = logging.getLogger(__name__)

MAX_NAMED = 50
"""Failed symbols an alert names one by one; the rest are counted."""


async def raise_alert(notifier: Notifier, alert: Alert) -> bool:
    """Log an alert and send it; True if it was sent now (not deduplicated), never raises."""
    log.warning("alert %s: %s", alert.key, alert.title)
    return await notifier.notify(alert)


def run_ended_alert(
    *, run_id: str, as_of: dt.date, state: str, symbols: int, failed: list[FailedSymbol]
) -> Alert:
    """The alert for a run that ended PARTIAL or FAILED, naming every failed symbol (capped)."""
    failed_symbols = sorted({f.symbol for f in failed})
    lines = [
        f"Run {run_id} for {as_of} ended {state}: "
        f"{len(failed_symbols)} of {symbols} symbols failed.",
    ]
    lines += [
        f"- {f.symbol}: {f.stage} failed after {f.attempts} attempts: {f.last_error or '?'}"
        for f in failed[:MAX_NAMED]
    ]
    if len(failed) > MAX_NAMED:
        lines.append(f"... and {len(failed) - MAX_NAMED} more")
    lines.append(
        "Fix the cause, then retry the failed tasks: "
        f'marketsense run retry {run_id} --reason "..."; '
        f"details: marketsense run status {run_id}"
    )
    return Alert(
        key=f"run-ended:{run_id}",
        severity="critical" if state == "FAILED" else "warning",
        title=f"Run for {as_of} ended {state} with {len(failed_symbols)} failed symbols",
        text="\n".join(lines),
    )


def stuck_run_alert(*, run_id: str, as_of: dt.date, idle_minutes: float, open_tasks: int) -> Alert:
    """The alert for a RUNNING run whose tasks have not moved for a while."""
    return Alert(
        key=f"stuck-run:{run_id}",
        severity="critical",
        title=f"Run for {as_of} is stuck: no task changed for {idle_minutes:.0f} minutes",
        text=(
            f"Run {run_id} for {as_of} is RUNNING but none of its tasks changed for "
            f"{idle_minutes:.0f} minutes; {open_tasks} tasks are still PENDING or RUNNING.\n"
            "Check that ingestion, processing and prediction are up and consuming "
            f"(marketsense run status {run_id}); to give up on it: "
            f'marketsense run cancel {run_id} --reason "..."'
        ),
    )


def dead_letter_alert(row: DeadLetter) -> Alert:
    """The alert for one dead letter, saying what failed and how to replay it."""
    what = row.event_type or "an unreadable record"
    where = f"{row.symbol or 'no symbol'} (run {row.run_id or 'unknown'})"
    return Alert(
        key=f"dead-letter:{row.original_topic}:{row.run_id or '-'}:{row.symbol or '-'}"[:255],
        severity="warning",
        title=f"Dead letter on {row.original_topic}: {what} for {where}",
        text=(
            f"{what} for {where} was dead-lettered from {row.original_topic} after "
            f"{row.attempts} attempt(s).\nError: {row.error or 'unknown'}\n"
            f"Fix the cause, then replay it: "
            f'marketsense dlq replay --id {row.id} --reason "..."'
        ),
    )
