"""Monitoring's alerts, each saying what was measured and what happens next."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from marketsense.common.alerts import Alert
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
