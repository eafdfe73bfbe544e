"""Monitoring's alerts, each saying what was measured and what happens next."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from marketsense.common.alerts import Alert
from marketsense.common.db.models import Challenge
from marketsense.monitoring.performance_types import DecayFinding, DriftFigure

MAX_NAMED = 20
"""Drifted features an alert names one by one; the rest are counted."""


def decay_alert(*, model: str, version: str, finding: DecayFinding) -> Alert:
    """The alert for a decay the policy found: one per model version and detection day."""
    return Alert(
        key=f"decay:{model}:{version}:{finding.day.isoformat()}"[:255],
        severity="warning",
        title=f"{model} {version} has decayed: Sharpe {finding.sharpe:.2f} below "
        f"{finding.threshold:.2f} over {finding.observations} days to {finding.window_end}",
        text=(
            f"{model} version {version}: {finding.reason}\n"
            f"Window {finding.window_start} to {finding.window_end} ({finding.observations} "
            f"outcome days): strategy Sharpe {finding.sharpe:.2f}, benchmark Sharpe "
            f"{finding.benchmark_sharpe:.2f}, threshold {finding.threshold:.2f}, "
            f"confidence {finding.confidence:.2f}.\n"
            f"retrain.requested was published for {finding.window_start} to "
            f"{finding.window_end}; the daily figures: GET /v1/performance/daily?model={model}"
            f"&version={version}"
        ),
    )


def drift_alert(
    *, run_id: str, as_of: dt.date | None, figures: Sequence[DriftFigure], runs: int = 1
) -> Alert | None:
    """The alert for a run whose features drifted from the served version's reference (in each
    of the latest `runs` runs, for the figures marked drifted); None when none did."""
    drifted = sorted((f for f in figures if f.drifted), key=lambda f: -f.statistic)
    if not drifted:
        return None
    lines = [
        f"Run {run_id} for {as_of}: {len(drifted)} of {len(figures)} features drifted from the "
        f"served model version's reference (Kolmogorov-Smirnov), in each of the latest {runs} "
        "runs:"
    ]
    lines += [
        f"- {f.feature}: statistic {f.statistic:.3f}, p-value {f.p_value:.2g} "
        f"({f.rows} rows against {f.reference_rows})"
        for f in drifted[:MAX_NAMED]
    ]
    if len(drifted) > MAX_NAMED:
        lines.append(f"... and {len(drifted) - MAX_NAMED} more")
    lines.append(
        "Predictions on inputs unlike the training data are unreliable: check the source's "
        f"data, then consider a retrain; the figures: GET /v1/drift (run {run_id})"
    )
    return Alert(
        key=f"drift:{run_id}",
        severity="warning",
        title=f"Feature drift in the run for {as_of}: {', '.join(f.feature for f in drifted[:3])}"
        + (" and more" if len(drifted) > 3 else ""),
        text="\n".join(lines),
    )


def _sharpe(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.2f}"


def challenge_alert(challenge: Challenge) -> Alert:
    """The alert for a challenge's decision, or for a winner that waits for an approver."""
    model, version = challenge.model_name, challenge.challenger_version
    figures = (
        f"{model}: challenger version {version} against production version "
        f"{challenge.champion_version} over {challenge.days} shared outcome days from "
        f"{challenge.started_on}: Sharpe {_sharpe(challenge.challenger_sharpe)} against "
        f"{_sharpe(challenge.champion_sharpe)}, margin {challenge.margin:.2f}."
    )
    if challenge.state == "AWAITING_APPROVAL":
        title = f"{model} version {version} beat production and awaits approval"
        then = (
            f"Approve with `marketsense challenges approve {challenge.id} --reason ...` (or "
            f"reject with `marketsense challenges reject {challenge.id} --reason ...`), an "
            "approver's key in MARKETSENSE_API_KEY."
        )
    elif challenge.state == "PROMOTED":
        title = f"{model} version {version} promoted to production"
        then = (
            f"Decided by {challenge.decided_by}: {challenge.reason}\nThe registry's audit "
            f"log has the move: GET /v1/models/{model}/aliases/production/history"
        )
    else:
        title = f"{model} version {version} rejected and archived"
        then = (
            f"Decided by {challenge.decided_by}: {challenge.reason}\nProduction version "
            f"{challenge.champion_version} keeps serving."
        )
    return Alert(
        key=f"challenge:{model}:{version}:{challenge.state}"[:255],
        severity="warning",
        title=title,
        text=f"{figures}\n{then}",
    )
