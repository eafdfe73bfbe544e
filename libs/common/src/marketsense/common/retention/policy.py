"""The retention policy as pure functions: when a thing expires, and what keeps it anyway."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from marketsense.common.states import RunState, TaskState

LIVE = "live"
"""Kept: its run is PENDING or RUNNING."""
RETRYABLE = "retryable"
"""Kept: its run is PARTIAL or FAILED with a failed task an operator may still retry."""
HELD = "held"
"""Kept: an operator holds its run."""
LINEAGE = "lineage"
"""Kept: a feature row inside a registered model version's training or evaluation window."""

LIVE_STATES = frozenset({RunState.PENDING.value, RunState.RUNNING.value})
RETRY_STATES = frozenset({RunState.PARTIAL.value, RunState.FAILED.value})
FAILED_TASK = TaskState.FAILED.value

_DAY = r"\d{4}-\d{2}-\d{2}"
_RANGE = re.compile(rf"({_DAY})\s*\.\.\s*({_DAY})")
_WINDOW_KEYS = (("train_start", "holdout_end"), ("train_start", "train_end"))


@dataclass(frozen=True)
class RunFacts:
    """What retention needs to know about a run to decide whether it may go."""

    id: str
    state: str
    finished_at: dt.datetime | None
    has_failed_task: bool


@dataclass(frozen=True)
class Window:
    """Trading days, first and last included, that a model version was trained or measured on."""

    start: dt.date
    end: dt.date
    source: str
    """Which version it belongs to, e.g. `predictor v3`."""

    def holds(self, day: dt.date) -> bool:
        """Whether the day falls inside the window."""
        return self.start <= day <= self.end


def cutoff(now: dt.datetime, days: int | None) -> dt.datetime | None:
    """The time before which things kept `days` days have expired; None when kept forever."""
    return None if days is None else now - dt.timedelta(days=days)


def expired(at: dt.datetime | None, limit: dt.datetime | None) -> bool:
    """Whether a thing stamped `at` is older than the cutoff (never when either is None)."""
    return at is not None and limit is not None and at < limit


def run_keep_reason(run: RunFacts, *, held: bool, now: dt.datetime, retry_days: int) -> str | None:
    """Why a run's objects and rows must stay (held, live, retryable), or None when they may go."""
    if held:
        return HELD
    if run.state in LIVE_STATES:
        return LIVE
    if run.state in RETRY_STATES and run.has_failed_task:
        # A run that never recorded its end is treated as just finished: keep it.
        ended = run.finished_at or now
        if ended > now - dt.timedelta(days=retry_days):
            return RETRYABLE
    return None


def lineage_windows(
    source: str, manifest: str | None, evaluation_window: str | None
) -> list[Window]:
    """A model version's windows: its manifest's training dates (`train_start` to `holdout_end`,
    or to `train_end`) and every `YYYY-MM-DD..YYYY-MM-DD` range of its evaluation window."""
    windows: list[Window] = []
    training = _training(manifest)
    for first, last in _WINDOW_KEYS:
        start, end = _day(training.get(first)), _day(training.get(last))
        if start is not None and end is not None:
            windows.append(Window(min(start, end), max(start, end), source))
            break
    texts = [evaluation_window or "", str(_manifest(manifest).get("evaluation_window") or "")]
    for text in texts:
        for first_text, last_text in _RANGE.findall(text):
            start, end = _day(first_text), _day(last_text)
            if start is not None and end is not None:
                windows.append(Window(min(start, end), max(start, end), source))
    return windows


def inside(day: dt.date, windows: Iterable[Window]) -> Window | None:
    """The first window holding the day, or None."""
    return next((window for window in windows if window.holds(day)), None)


def object_keep_reason(
    *,
    table: str,
    as_of: dt.date,
    run_reason: str | None,
    windows: Sequence[Window],
) -> str | None:
    """Why an expired object row stays: its run's reason, or lineage for a feature row."""
    if run_reason is not None:
        return run_reason
    if table == "features" and inside(as_of, windows) is not None:
        return LINEAGE
    return None


def prefix_of(key: str) -> str:
    """The top-level prefix of an object key, `raw/` for `raw/2026-01-02/...`."""
    return key.split("/", 1)[0] + "/"


def _manifest(text: str | None) -> dict[str, object]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _training(text: str | None) -> dict[str, object]:
    training = _manifest(text).get("training")
    return training if isinstance(training, dict) else {}


def _day(value: object) -> dt.date | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None
