"""The report's markers of the story: the flip always, then each step of the loop that came."""

from __future__ import annotations

import datetime as dt

from marketsense.cli.report import ReportEvent
from marketsense.cli.story_outcome import events
from marketsense.cli.story_plan import story_plan
from marketsense.cli.story_summary import Milestones
from marketsense.common.calendar import exchange_calendar

PLAN = story_plan(
    exchange_calendar().sessions(dt.date(2025, 1, 2), dt.date(2025, 12, 31)),
    first_backfill=110,
    flip=126,
)


def test_every_step_that_came_is_marked_on_its_session_and_the_flip_on_its_day() -> None:
    marks = Milestones(alert=132, retrained=139, promoted=145, serving=146, new_version="2")

    assert events(PLAN, marks) == [
        ReportEvent(PLAN.flip_day, "text signal flips"),
        ReportEvent(PLAN.sessions[132], "decay alert"),
        ReportEvent(PLAN.sessions[139], "retrained v2 ready"),
        ReportEvent(PLAN.sessions[145], "v2 promoted"),
        ReportEvent(PLAN.sessions[146], "v2 serving"),
    ]


def test_steps_that_did_not_come_are_not_marked() -> None:
    assert events(PLAN, Milestones(alert=130)) == [
        ReportEvent(PLAN.flip_day, "text signal flips"),
        ReportEvent(PLAN.sessions[130], "decay alert"),
    ]
