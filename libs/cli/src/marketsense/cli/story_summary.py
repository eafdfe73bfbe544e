"""What the story shows, read from the APIs' answers: when the decay alert, the retrained model,
its promotion and its serving came (in sessions after the flip), the spans' Sharpe ratios, and
whether the issue's goals were met."""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

from marketsense.cli.story_figures import SPANS, SpanSharpe
from marketsense.cli.story_plan import StoryPlan

ALERT_GOAL_DAYS = 10
"""The decay alert comes within this many trading days of the flip."""

SERVING_GOAL_DAYS = 25
"""The retrained model serves within this many trading days of the flip."""

RECOVERY_GOAL_RATIO = 0.5
"""After the retrained model serves, production's Sharpe reaches this share of the perfect
model's on the same days."""

TIME_GOAL_SECONDS = 300.0
"""The story takes at most this long after set-up."""


@dataclass(frozen=True)
class Milestones:
    """Sessions (indices into the plan) at which each step of the loop came; None if it did not."""

    alert: int | None = None
    retrained: int | None = None
    promoted: int | None = None
    serving: int | None = None
    new_version: str | None = None


@dataclass(frozen=True)
class StoryFigures:
    """The summary the story prints and the README quotes."""

    milestones: Milestones
    flip: int
    spans: list[SpanSharpe] = field(default_factory=list)
    seconds: float = 0.0

    def after_flip(self, session: int | None) -> int | None:
        """Trading days from the flip to `session`."""
        return None if session is None else session - self.flip


def parse_instant(text: str) -> dt.datetime:
    """An ISO 8601 instant from an API; one without an offset is UTC, as the services store."""
    instant = dt.datetime.fromisoformat(text)
    return instant if instant.tzinfo else instant.replace(tzinfo=dt.UTC)


def session_at(instant: dt.datetime, starts: Sequence[tuple[dt.datetime, int]]) -> int | None:
    """The session the pipeline was at when `instant` happened: that of the latest run started
    at or before it (`starts`: (start, session) ascending); None before the first."""
    at = bisect.bisect_right([start for start, _ in starts], instant)
    return starts[at - 1][1] if at else None


def alert_session(plan: StoryPlan, alerts: Sequence[Mapping[str, Any]]) -> int | None:
    """The session of the first decay alert on an outcome day after the flip day: the alert's
    `day` is the last outcome day it judged, which the run of that session resolved."""
    days = [dt.date.fromisoformat(str(a["day"])) for a in alerts]
    after = sorted(d for d in days if d > plan.flip_day and d in plan.sessions)
    return plan.index(after[0]) if after else None


def retrained(
    retrains: Sequence[Mapping[str, Any]],
    starts: Sequence[tuple[dt.datetime, int]],
    promoted: Sequence[str] = (),
) -> tuple[str | None, int | None]:
    """The retrain the story follows: the first DONE one whose version production moved to (a
    challenger that lost is passed over), else the first DONE one; its registry version and the
    session it ended at."""
    done = [r for r in retrains if r["state"] == "DONE" and r.get("version") is not None]
    won = [r for r in done if str(r["version"]) in promoted]
    if not done:
        return None, None
    first = min(won or done, key=lambda r: parse_instant(r["updated_at"]))
    return str(first["version"]), session_at(parse_instant(first["updated_at"]), starts)


def promoted_session(
    history: Sequence[Mapping[str, Any]],
    version: str | None,
    starts: Sequence[tuple[dt.datetime, int]],
) -> int | None:
    """The session at which `production` first moved to `version` (alias history entries)."""
    moves = [
        parse_instant(h["at"])
        for h in history
        if version is not None and str(h.get("to_version")) == version
    ]
    return session_at(min(moves), starts) if moves else None


def serving_session(served: Mapping[int, str], version: str | None) -> int | None:
    """The first session whose production predictions came from `version`."""
    sessions = sorted(s for s, v in served.items() if version is not None and v == version)
    return sessions[0] if sessions else None


def goals(figures: StoryFigures) -> list[tuple[str, bool]]:
    """Each of the issue's goals and whether the story met it."""
    alert = figures.after_flip(figures.milestones.alert)
    serving = figures.after_flip(figures.milestones.serving)
    after = next((s for s in figures.spans if s.span == SPANS[2]), None)
    recovered = (
        after is not None
        and after.production is not None
        and after.perfect is not None
        and after.perfect > 0
        and after.production >= RECOVERY_GOAL_RATIO * after.perfect
    )
    return [
        (
            f"decay alert within {ALERT_GOAL_DAYS} trading days of the flip",
            _within(alert, ALERT_GOAL_DAYS),
        ),
        (
            f"retrained model serving within {SERVING_GOAL_DAYS} trading days",
            _within(serving, SERVING_GOAL_DAYS),
        ),
        (f"after serving, Sharpe >= {RECOVERY_GOAL_RATIO:g} x perfect knowledge", recovered),
        (
            f"the story within {TIME_GOAL_SECONDS:.0f} s after set-up",
            figures.seconds <= TIME_GOAL_SECONDS,
        ),
    ]


def _within(days: int | None, limit: int) -> bool:
    return days is not None and 0 <= days <= limit


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def summary_table(figures: StoryFigures, plan: StoryPlan) -> Table:
    """The steps in trading days after the flip (with their day), then the spans' Sharpe."""
    table = Table(title=f"the feedback loop (flip after {plan.flip_day})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("detail")
    m = figures.milestones
    steps = (
        ("decay alert", m.alert),
        (f"retrained version {m.new_version or '-'} ready", m.retrained),
        ("promoted to production", m.promoted),
        ("serving production predictions", m.serving),
    )
    for name, session in steps:
        days = figures.after_flip(session)
        detail = f"session {plan.sessions[session]}" if session is not None else "did not happen"
        table.add_row(f"days from flip to {name}", "n/a" if days is None else str(days), detail)
    for span in figures.spans:
        table.add_row(
            f"Sharpe {span.span}",
            _number(span.production),
            f"perfect knowledge {_number(span.perfect)} over {span.days} days",
        )
    table.add_row("story time", f"{figures.seconds:.0f} s", "after set-up")
    return table
