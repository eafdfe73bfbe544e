"""A training set over the row limit keeps the newest whole days: never half a day, always at
least the newest one."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from marketsense.retraining.training_set import newest_days, set_key

DAYS = [dt.date(2026, 6, 1) + dt.timedelta(days=i) for i in range(5)]


def _table(per_day: int) -> pd.DataFrame:
    return pd.DataFrame(
        [{"symbol": f"S{s}", "date": day, "label": s % 2} for day in DAYS for s in range(per_day)]
    )


def test_a_table_within_the_limit_is_kept_whole() -> None:
    table = _table(10)
    assert newest_days(table, 50) is table


def test_a_table_over_the_limit_keeps_the_newest_whole_days() -> None:
    kept = newest_days(_table(10), 35)
    assert sorted(set(kept["date"])) == DAYS[-3:]
    assert len(kept) == 30


def test_a_day_larger_than_the_limit_is_still_kept_alone() -> None:
    kept = newest_days(_table(10), 4)
    assert list(set(kept["date"])) == [DAYS[-1]]


def test_each_retrain_stores_its_set_under_its_own_key() -> None:
    assert set_key("abc") == "retraining/abc/training_set.parquet"
