"""The retention policy's pure functions: expiry, what keeps a run, and lineage windows."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from marketsense.common.retention.policy import (
    HELD,
    LINEAGE,
    LIVE,
    RETRYABLE,
    RunFacts,
    Window,
    cutoff,
    expired,
    inside,
    lineage_windows,
    object_keep_reason,
    prefix_of,
    run_keep_reason,
)

NOW = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)


def _run(state: str, *, finished_days: int | None = 100, failed: bool = False) -> RunFacts:
    finished = None if finished_days is None else NOW - dt.timedelta(days=finished_days)
    return RunFacts("r1", state, finished, failed)


def test_a_thing_kept_forever_never_expires() -> None:
    assert cutoff(NOW, None) is None
    assert not expired(NOW - dt.timedelta(days=10_000), cutoff(NOW, None))


def test_a_thing_expires_only_once_older_than_its_days() -> None:
    limit = cutoff(NOW, 90)

    assert expired(NOW - dt.timedelta(days=90, seconds=1), limit)
    assert not expired(NOW - dt.timedelta(days=89), limit)
    assert not expired(None, limit)


@pytest.mark.parametrize(
    ("run", "held", "reason"),
    [
        (_run("SUCCESS"), True, HELD),
        (_run("RUNNING", finished_days=None), False, LIVE),
        (_run("PENDING", finished_days=None), False, LIVE),
        (_run("FAILED", finished_days=10, failed=True), False, RETRYABLE),
        (_run("PARTIAL", finished_days=None, failed=True), False, RETRYABLE),
        (_run("FAILED", finished_days=31, failed=True), False, None),
        (_run("FAILED", finished_days=10, failed=False), False, None),
        (_run("CANCELLED", finished_days=1), False, None),
        (_run("SUCCESS", finished_days=1), False, None),
    ],
)
def test_what_keeps_a_run(run: RunFacts, held: bool, reason: str | None) -> None:
    assert run_keep_reason(run, held=held, now=NOW, retry_days=30) == reason


def test_lineage_windows_come_from_the_manifest_training_dates_and_the_evaluation_window() -> None:
    manifest = json.dumps(
        {
            "training": {
                "train_start": "2024-01-02",
                "train_end": "2024-06-28",
                "holdout_end": "2024-08-30",
            },
            "evaluation_window": "stored runs 2024-06-28..2024-08-30",
        }
    )

    windows = lineage_windows("predictor v3", manifest, "held-out 2023-03-01..2023-03-31")

    assert [(w.start, w.end) for w in windows] == [
        (dt.date(2024, 1, 2), dt.date(2024, 8, 30)),
        (dt.date(2023, 3, 1), dt.date(2023, 3, 31)),
        (dt.date(2024, 6, 28), dt.date(2024, 8, 30)),
    ]
    assert {w.source for w in windows} == {"predictor v3"}


def test_a_manifest_without_dates_gives_no_window_rather_than_an_error() -> None:
    assert lineage_windows("sentiment v1", "not json", None) == []
    assert lineage_windows("sentiment v1", json.dumps({"training": {"source": "x"}}), "") == []
    only_train = json.dumps({"training": {"train_start": "2024-01-02", "train_end": "2024-02-01"}})
    assert lineage_windows("p v1", only_train, None) == [
        Window(dt.date(2024, 1, 2), dt.date(2024, 2, 1), "p v1")
    ]


def test_only_feature_rows_inside_a_window_are_kept_for_lineage() -> None:
    windows = [Window(dt.date(2024, 1, 2), dt.date(2024, 1, 31), "p v1")]
    day, after = dt.date(2024, 1, 31), dt.date(2024, 2, 1)

    assert inside(day, windows) == windows[0]
    assert inside(after, windows) is None
    assert object_keep_reason(table="features", as_of=day, run_reason=None, windows=windows) == (
        LINEAGE
    )
    assert (
        object_keep_reason(table="raw_objects", as_of=day, run_reason=None, windows=windows) is None
    )
    assert (
        object_keep_reason(table="features", as_of=after, run_reason=None, windows=windows) is None
    )
    assert object_keep_reason(table="raw_objects", as_of=day, run_reason=HELD, windows=[]) == HELD


def test_the_prefix_of_a_key_is_its_first_folder() -> None:
    assert prefix_of("raw/2026-01-02/run/AAPL/bars.parquet") == "raw/"
    assert prefix_of("features/2026-01-02/run/AAPL.parquet") == "features/"
