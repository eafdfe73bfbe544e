"""Who may take a retrain request and when it is spent: a lease frees a request only once it ran
out, and attempts stop at the limit (a worker lost on the last attempt puts it over)."""

from __future__ import annotations

import datetime as dt

import pytest

from marketsense.retraining.states import (
    FINAL,
    TAKEN_AGAIN,
    RetrainState,
    lease_free,
    over_the_limit,
    spent,
)

NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("claimed_at", "free"),
    [
        (None, True),
        (NOW - dt.timedelta(seconds=599), False),
        (NOW - dt.timedelta(seconds=600), True),
        (NOW - dt.timedelta(hours=3), True),
        (NOW + dt.timedelta(seconds=1), False),
    ],
)
def test_a_lease_frees_a_request_only_once_it_has_run_out(
    claimed_at: dt.datetime | None, free: bool
) -> None:
    assert lease_free(claimed_at, now=NOW, lease_seconds=600) is free


@pytest.mark.parametrize(
    ("attempts", "is_spent", "is_over"), [(1, False, False), (3, True, False), (4, True, True)]
)
def test_attempts_stop_at_the_limit_and_a_lost_last_attempt_is_over_it(
    attempts: int, is_spent: bool, is_over: bool
) -> None:
    assert spent(attempts, 3) is is_spent
    assert over_the_limit(attempts, 3) is is_over


def test_a_killed_worker_s_training_or_pushing_is_taken_again_but_final_states_never() -> None:
    assert set(TAKEN_AGAIN) == {RetrainState.REQUESTED, RetrainState.TRAINING, RetrainState.PUSHING}
    assert RetrainState.WAITING not in TAKEN_AGAIN  # a finished run releases it
    assert not set(FINAL) & set(TAKEN_AGAIN)
