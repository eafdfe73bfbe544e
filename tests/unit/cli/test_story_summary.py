"""The story's milestones read from API answers (alerts, retrains, alias history, what production
served), the goals judged on them, and the summary table."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.console import Console

from marketsense.cli.story_figures import SPANS, SpanSharpe
from marketsense.cli.story_plan import story_plan
from marketsense.cli.story_summary import (
    Milestones,
    StoryFigures,
    alert_session,
    goals,
    parse_instant,
    promoted_session,
    retrained,
    serving_session,
    session_at,
    summary_table,
)
from marketsense.common.calendar import exchange_calendar

SESSIONS = exchange_calendar().sessions(dt.date(2025, 1, 2), dt.date(2025, 12, 31))
PLAN = story_plan(SESSIONS, first_backfill=110, flip=126)
T0 = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
# The opening backfill started at T0, then one daily run a minute from session 110 on.
STARTS = [(T0, 0)] + [(T0 + dt.timedelta(minutes=s - 109), s) for s in range(110, 160)]


def _at(session: int, seconds: int = 20) -> str:
    """An API timestamp (naive, UTC) `seconds` into the run of `session`."""
    return (
        (T0 + dt.timedelta(minutes=session - 109, seconds=seconds)).replace(tzinfo=None).isoformat()
    )


def test_an_instant_belongs_to_the_latest_run_started_by_then() -> None:
    assert session_at(T0 - dt.timedelta(seconds=1), STARTS) is None
    assert session_at(T0 + dt.timedelta(seconds=30), STARTS) == 0
    assert session_at(parse_instant(_at(131)), STARTS) == 131
    assert session_at(parse_instant(_at(131, seconds=0)), STARTS) == 131
    assert parse_instant("2026-12-05T12:00:00+01:00") == T0 - dt.timedelta(hours=1)


def test_milestones_come_from_the_first_alert_after_the_flip_and_the_done_retrain() -> None:
    alerts = [
        {"day": SESSIONS[133].isoformat()},
        {"day": SESSIONS[90].isoformat()},  # before the flip: a false alarm, not the detection
        {"day": SESSIONS[131].isoformat()},
    ]
    retrains: list[dict[str, Any]] = [
        {"state": "FAILED", "version": None, "updated_at": _at(134)},
        {"state": "DONE", "version": 3, "updated_at": _at(139)},
        {"state": "DONE", "version": 2, "updated_at": _at(136)},
    ]
    history = [
        {"to_version": 3, "at": _at(146)},
        {"to_version": 2, "at": _at(144)},
        {"to_version": 1, "at": _at(0)},
    ]
    served = {130: "1", 144: "1", 145: "2", 146: "2"}

    version, ready = retrained(retrains, STARTS)

    assert alert_session(PLAN, alerts) == 131
    assert (version, ready) == ("2", 136)
    assert promoted_session(history, version, STARTS) == 144
    assert serving_session(served, version) == 145
    assert alert_session(PLAN, alerts[1:2]) is None
    assert retrained(retrains[:1], STARTS) == (None, None)
    # v2 lost its challenge and v3 was promoted: the story follows v3.
    assert retrained(retrains, STARTS, promoted=["1", "3"]) == ("3", 139)
    assert promoted_session(history, None, STARTS) is None
    assert serving_session(served, "9") is None


def _figures(
    serving: int | None, after: tuple[float | None, float | None], seconds: float
) -> StoryFigures:
    spans = [
        SpanSharpe(SPANS[0], 126, 3.0, 10.0),
        SpanSharpe(SPANS[1], 20, -2.0, 9.0),
        SpanSharpe(SPANS[2], 100, *after),
    ]
    milestones = Milestones(
        alert=133, retrained=140, promoted=144, serving=serving, new_version="2"
    )
    return StoryFigures(milestones=milestones, flip=126, spans=spans, seconds=seconds)


def test_goals_are_met_or_missed_on_the_figures() -> None:
    met = goals(_figures(serving=151, after=(5.0, 10.0), seconds=300.0))
    missed = goals(_figures(serving=152, after=(4.9, 10.0), seconds=300.5))
    undefined = goals(_figures(serving=None, after=(None, None), seconds=10))

    assert [ok for _, ok in met] == [True, True, True, True]
    assert [ok for _, ok in missed] == [True, False, False, False]
    assert [ok for _, ok in undefined] == [True, False, False, True]


def test_the_table_shows_days_after_the_flip_and_each_spans_sharpe_beside_perfect() -> None:
    console = Console(record=True, width=160)
    console.print(summary_table(_figures(serving=151, after=(6.25, 10.5), seconds=212.4), PLAN))
    text = console.export_text()

    assert f"flip after {SESSIONS[126]}" in text
    assert "days from flip to decay alert" in text
    assert f"session {SESSIONS[133]}" in text
    assert "retrained version 2 ready" in text
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if "│" in line}
    assert rows["days from flip to decay alert"].split("│")[2].strip() == "7"
    assert rows["days from flip to serving production predictions"].split("│")[2].strip() == "25"
    assert "6.25" in rows["Sharpe after serving"]
    assert "10.50" in rows["Sharpe after serving"]
    assert "212 s" in rows["story time"]
