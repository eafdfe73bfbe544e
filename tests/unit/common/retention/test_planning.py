"""Planning's pure rules: when a dead letter may go, and what keeps a run's things."""

from __future__ import annotations

import datetime as dt

from marketsense.common.retention.planning import Facts, dead_letter_expired
from marketsense.common.retention.policy import RunFacts

NOW = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
LIMIT = NOW - dt.timedelta(days=30)


def _facts(*runs: RunFacts, held: frozenset[str] = frozenset()) -> Facts:
    return Facts(runs={r.id: r for r in runs}, held=set(held), windows=[], now=NOW, retry_days=30)


def _ago(days: int) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


def test_a_replayed_dead_letter_goes_once_its_replay_is_older_than_the_limit() -> None:
    facts = _facts(RunFacts("r", "SUCCESS", _ago(1), False))

    assert dead_letter_expired(facts, run_id="r", replayed_at=_ago(31), limit=LIMIT)
    assert not dead_letter_expired(facts, run_id="r", replayed_at=_ago(29), limit=LIMIT)
    assert dead_letter_expired(facts, run_id=None, replayed_at=_ago(31), limit=LIMIT)


def test_an_unreplayed_dead_letter_goes_only_once_its_run_finished_for_good_long_enough() -> None:
    facts = _facts(
        RunFacts("done", "SUCCESS", _ago(40), False),
        RunFacts("recent", "SUCCESS", _ago(10), False),
        RunFacts("retryable", "FAILED", _ago(20), True),
        RunFacts("live", "RUNNING", None, False),
    )

    assert dead_letter_expired(facts, run_id="done", replayed_at=None, limit=LIMIT)
    for run_id in ("recent", "retryable", "live", None, "gone"):
        assert not dead_letter_expired(facts, run_id=run_id, replayed_at=None, limit=LIMIT)


def test_a_hold_keeps_a_dead_letter_whatever_its_age() -> None:
    facts = _facts(RunFacts("r", "SUCCESS", _ago(400), False), held=frozenset({"r"}))

    assert facts.run_reason("r") == "held"
    assert not dead_letter_expired(facts, run_id="r", replayed_at=_ago(400), limit=LIMIT)
