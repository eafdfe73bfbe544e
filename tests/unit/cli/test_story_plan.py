"""The story's timeline: phases laid out over a year of exchange sessions, and refused when they
do not fit."""

from __future__ import annotations

import datetime as dt

import pytest

from marketsense.cli.story_plan import StoryPlanError, story_plan, story_sessions
from marketsense.common.calendar import exchange_calendar

YEAR = exchange_calendar().sessions(dt.date(2024, 11, 1), dt.date(2026, 3, 31))


def test_a_year_of_sessions_ends_on_the_given_session_and_skips_holidays() -> None:
    sessions = story_sessions(dt.date(2025, 12, 31), 252, YEAR)

    assert len(sessions) == 252
    assert sessions[-1] == dt.date(2025, 12, 31)
    assert dt.date(2025, 12, 25) not in sessions  # Christmas: the exchange is closed
    assert dt.date(2025, 7, 4) not in sessions
    with pytest.raises(StoryPlanError, match="2025-12-25 is not a session"):
        story_sessions(dt.date(2025, 12, 25), 252, YEAR)
    with pytest.raises(StoryPlanError, match="fewer than 252 sessions"):
        story_sessions(dt.date(2025, 3, 3), 252, YEAR)


def test_the_flip_day_is_the_flip_sessions_day_and_daily_runs_stop_after_the_margin() -> None:
    sessions = story_sessions(dt.date(2025, 12, 31), 252, YEAR)
    plan = story_plan(sessions, first_backfill=110, flip=126, max_daily_after_flip=45)

    assert plan.flip_day == sessions[126]
    assert plan.index(sessions[126]) == 126
    assert plan.last_daily == 171
    # Not yet serving: the daily runs go on until the cap.
    assert not plan.daily_done(150, None)
    assert plan.daily_done(171, None)
    # Serving from session 140: three more daily runs, then the closing backfill.
    assert not plan.daily_done(142, 140)
    assert plan.daily_done(143, 140)


def test_the_cap_never_runs_past_the_last_session() -> None:
    sessions = story_sessions(dt.date(2025, 12, 31), 60, YEAR)
    plan = story_plan(sessions, first_backfill=30, flip=40, max_daily_after_flip=45)

    assert plan.last_daily == 59


@pytest.mark.parametrize(
    ("first_backfill", "flip", "message"),
    [
        (0, 126, "opening backfill"),
        (252, 126, "opening backfill"),
        (130, 126, "after the opening backfill"),
        (110, 251, "before the last session"),
    ],
)
def test_phases_that_do_not_fit_are_refused_naming_the_number(
    first_backfill: int, flip: int, message: str
) -> None:
    sessions = story_sessions(dt.date(2025, 12, 31), 252, YEAR)
    with pytest.raises(StoryPlanError, match=message):
        story_plan(sessions, first_backfill=first_backfill, flip=flip)


def test_a_day_outside_the_story_is_refused_by_name() -> None:
    plan = story_plan(story_sessions(dt.date(2025, 12, 31), 252, YEAR))
    with pytest.raises(ValueError, match="2026-01-02 is not a session of the story"):
        plan.index(dt.date(2026, 1, 2))
