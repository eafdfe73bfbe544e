"""The story's timeline: a year of sessions, the text signal's flip mid-year, and which sessions run
as one backfill and which day by day."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

STORY_SESSIONS = 252
"""Sessions the story covers: one trading year."""

FIRST_BACKFILL_SESSIONS = 120
"""Sessions of the opening backfill: monitoring then holds more outcome days than the decay
policy's minimum (63), and a week of daily runs comes before the flip."""

FLIP_SESSION = 126
"""Index of the session after which the texts' lead flips (`regime_change`): mid-year."""

MAX_DAILY_AFTER_FLIP = 45
"""Daily runs after the flip at most before the rest of the year goes as one backfill, whether or
not the retrained model serves by then (the goal is 25)."""

SERVING_MARGIN = 3
"""Daily runs after the retrained model first serves, before the closing backfill."""


class StoryPlanError(ValueError):
    """The timeline cannot be laid out; the message says which number to change."""


@dataclass(frozen=True)
class StoryPlan:
    """The story's sessions and where its phases start and end (indices into `sessions`)."""

    sessions: tuple[dt.date, ...]
    first_backfill: int
    """Sessions 0 to `first_backfill - 1` run as one backfill."""
    flip: int
    """The texts' lead flips on the returns of the sessions after `sessions[flip]`."""
    max_daily_after_flip: int = MAX_DAILY_AFTER_FLIP
    serving_margin: int = SERVING_MARGIN

    @property
    def flip_day(self) -> dt.date:
        """The simulated market's `regime_change`: the last day whose next return keeps the old
        sign (predictions made on it are the first the flip fools)."""
        return self.sessions[self.flip]

    @property
    def last_daily(self) -> int:
        """Index of the last session that may run daily before the closing backfill."""
        return min(self.flip + self.max_daily_after_flip, len(self.sessions) - 1)

    def index(self, day: dt.date) -> int:
        """The index of a session of the story; ValueError for any other day."""
        try:
            return self.sessions.index(day)
        except ValueError:
            raise ValueError(f"{day} is not a session of the story") from None

    def daily_done(self, session: int, serving_since: int | None) -> bool:
        """Whether the daily runs stop after `session`: the retrained model has served for the
        margin's days, or the daily phase reached its last session."""
        if session >= self.last_daily:
            return True
        return serving_since is not None and session >= serving_since + self.serving_margin


def story_plan(
    sessions: list[dt.date],
    *,
    first_backfill: int = FIRST_BACKFILL_SESSIONS,
    flip: int = FLIP_SESSION,
    max_daily_after_flip: int = MAX_DAILY_AFTER_FLIP,
    serving_margin: int = SERVING_MARGIN,
) -> StoryPlan:
    """The plan over `sessions` (ascending); StoryPlanError when the phases do not fit in them."""
    if sorted(set(sessions)) != list(sessions):
        raise StoryPlanError("the story's sessions must be ascending and distinct")
    if not 1 <= first_backfill < len(sessions):
        raise StoryPlanError(
            f"the opening backfill ({first_backfill} sessions) must leave sessions of the "
            f"{len(sessions)} to run daily"
        )
    if not first_backfill <= flip < len(sessions) - 1:
        raise StoryPlanError(
            f"the flip (session {flip}) must come after the opening backfill "
            f"({first_backfill} sessions) and before the last session ({len(sessions) - 1})"
        )
    if max_daily_after_flip < 1 or serving_margin < 0:
        raise StoryPlanError("max_daily_after_flip must be 1 or more and serving_margin 0 or more")
    return StoryPlan(
        sessions=tuple(sessions),
        first_backfill=first_backfill,
        flip=flip,
        max_daily_after_flip=max_daily_after_flip,
        serving_margin=serving_margin,
    )


def story_sessions(last: dt.date, count: int, calendar_sessions: list[dt.date]) -> list[dt.date]:
    """The `count` sessions of `calendar_sessions` ending at `last` (a session)."""
    if last not in calendar_sessions:
        raise StoryPlanError(f"{last} is not a session of the exchange")
    end = calendar_sessions.index(last) + 1
    if end < count:
        raise StoryPlanError(f"fewer than {count} sessions end at {last}")
    return calendar_sessions[end - count : end]
