"""Cleaning bars and texts from any source: the trading day a text counts for, rows dropped or
fixed with the reason, and the windows served."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from marketsense.ingestion.sources.base import BAR_COLUMNS, TEXT_COLUMNS, SourceRejected
from marketsense.ingestion.sources.validate import (
    clean_bars,
    clean_texts,
    restrict_bars,
    restrict_texts,
    trading_day,
)


def day_of(*stamps: str) -> list[dt.date]:
    """The trading days of UTC timestamps."""
    return trading_day(pd.Series(pd.to_datetime(list(stamps), utc=True))).tolist()


@pytest.mark.parametrize(
    ("stamp", "day"),
    [
        pytest.param("2026-07-15T19:59:00Z", dt.date(2026, 7, 15), id="summer-before-close"),
        pytest.param("2026-07-15T20:00:00Z", dt.date(2026, 7, 16), id="summer-close-is-20-utc"),
        pytest.param("2026-11-18T20:30:00Z", dt.date(2026, 11, 18), id="winter-close-is-21-utc"),
        pytest.param("2026-11-18T21:00:00Z", dt.date(2026, 11, 19), id="winter-at-close"),
        pytest.param("2026-11-20T21:30:00Z", dt.date(2026, 11, 23), id="friday-after-close"),
        pytest.param("2026-11-21T15:00:00Z", dt.date(2026, 11, 23), id="saturday"),
        pytest.param("2026-03-08T14:00:00Z", dt.date(2026, 3, 9), id="clocks-change-sunday"),
        pytest.param("2026-11-17T02:00:00Z", dt.date(2026, 11, 17), id="utc-tuesday-is-ny-monday"),
        pytest.param("2026-11-26T15:00:00Z", dt.date(2026, 11, 26), id="holiday-not-modelled"),
    ],
)
def test_a_text_counts_for_the_new_york_trading_day_it_was_published_before_the_close_of(
    stamp: str, day: dt.date
) -> None:
    assert day_of(stamp) == [day]


def bars(rows: list[tuple[object, ...]]) -> pd.DataFrame:
    """A bars frame from (date, open, high, low, close, volume) rows."""
    return pd.DataFrame(rows, columns=list(BAR_COLUMNS))


def test_bars_are_read_from_text_and_extra_columns_dropped() -> None:
    frame = bars(
        [
            ("2026-11-19", "100.5", "102", "99", "101", "1200"),
            ("2026-11-20", 101.0, 103.0, 100.0, 102.5, 900.0),
        ]
    )
    frame["adjclose"] = [1.0, 2.0]

    cleaned, issues = clean_bars(frame, symbol="AAA")

    assert issues == []
    assert list(cleaned.columns) == list(BAR_COLUMNS)
    assert cleaned["date"].tolist() == [dt.date(2026, 11, 19), dt.date(2026, 11, 20)]
    assert cleaned["open"].tolist() == [100.5, 101.0]
    assert (cleaned[["open", "high", "low", "close", "volume"]].dtypes == "float64").all()


@pytest.mark.parametrize(
    "dates",
    [
        pytest.param(["2026-03-06T00:00:00-05:00", "2026-03-09T00:00:00-04:00"], id="dst-change"),
        pytest.param(["2026-03-06T00:00:00+09:00", "2026-03-09"], id="offset-and-plain"),
        pytest.param(["2026-03-06T00:00:00Z", "2026-03-09T00:00:00Z"], id="utc"),
    ],
)
def test_bar_dates_with_offsets_keep_the_day_of_their_own_zone(dates: list[str]) -> None:
    frame = bars([(d, 10.0, 11.0, 9.0, 10.5, 100.0) for d in [*dates, "garbled"]])

    cleaned, issues = clean_bars(frame, symbol="AAA")

    assert cleaned["date"].tolist() == [dt.date(2026, 3, 6), dt.date(2026, 3, 9)]
    assert issues == ["AAA: dropped 1 row with an unreadable date"]


def test_no_bars_clean_to_no_bars() -> None:
    cleaned, issues = clean_bars(bars([]), symbol="AAA")

    assert cleaned.empty
    assert list(cleaned.columns) == list(BAR_COLUMNS)
    assert issues == []


def test_bars_without_a_price_column_reject_the_symbol() -> None:
    with pytest.raises(SourceRejected, match="AAA: bars lack columns close"):
        clean_bars(bars([]).drop(columns=["close"]), symbol="AAA")


def test_issues_count_the_rows_they_dropped_in_words() -> None:
    frame = bars(
        [
            ("2026-11-16", 10.0, 11.0, 9.0, 10.0, np.nan),
            ("2026-11-17", 10.0, 11.0, 9.0, 10.0, None),
            ("2026-11-18", 10.0, 11.0, 9.0, 10.0, -5.0),
            ("2026-11-19", 10.0, 11.0, 9.0, 10.0, 100.0),
        ]
    )

    cleaned, issues = clean_bars(frame, symbol="AAA")

    assert issues == [
        "AAA: dropped 2 rows with a missing volume",
        "AAA: dropped 1 row with a negative volume",
    ]
    assert cleaned["date"].tolist() == [dt.date(2026, 11, 19)]


def texts(rows: Sequence[tuple[object, ...]], **columns: list[object]) -> pd.DataFrame:
    """A texts frame from (id, published_at, text) rows and optional further columns."""
    frame = pd.DataFrame(rows, columns=["id", "published_at", "text"])
    for name, values in columns.items():
        frame[name] = pd.Series(values, dtype="object")
    return frame


def test_texts_without_a_time_zone_are_read_as_utc() -> None:
    frame = texts([("a", "2026-11-18T20:30:00", "x"), ("b", "2026-11-18T21:30:00", "y")])

    cleaned, issues = clean_texts(frame, symbol="AAA")

    assert issues == []
    assert cleaned["published_at"].dt.tz is not None
    assert cleaned.set_index("id")["date"].to_dict() == {
        "a": dt.date(2026, 11, 18),  # 15:30 in New York
        "b": dt.date(2026, 11, 19),  # 16:30: after the close
    }


def test_ids_are_text_and_rows_without_one_are_dropped() -> None:
    frame = texts(
        [
            (12, "2026-11-18T15:00:00Z", "x"),
            (None, "2026-11-18T15:00:00Z", "y"),
            ("  ", "2026-11-18T15:00:00Z", "z"),
            (" 0012 ", "2026-11-18T15:00:00Z", "w"),
        ]
    )

    cleaned, issues = clean_texts(frame, symbol="AAA")

    assert cleaned["id"].tolist() == ["0012", "12"]
    assert issues == ["AAA: dropped 2 texts without an id"]


def test_sources_and_dates_given_are_kept_and_missing_ones_filled_in() -> None:
    frame = texts(
        [
            ("a", "2026-11-18T15:00:00Z", "x"),
            ("b", "2026-11-18T15:00:00Z", "y"),
            ("c", "2026-11-18T15:00:00Z", "z"),
        ],
        source=["wire", "  ", None],
        date=["2026-11-20", "not a date", None],
    )

    cleaned, _ = clean_texts(frame, symbol="AAA", default_source="feed")

    by_id = cleaned.set_index("id")
    assert by_id["source"].to_dict() == {"a": "wire", "b": "feed", "c": "feed"}
    assert by_id["date"].to_dict() == {
        "a": dt.date(2026, 11, 20),
        "b": dt.date(2026, 11, 18),
        "c": dt.date(2026, 11, 18),
    }
    assert list(cleaned.columns) == list(TEXT_COLUMNS)


def test_bodies_up_to_the_limit_are_kept_whole_and_longer_ones_cut_to_it() -> None:
    frame = texts(
        [("a", "2026-11-18T15:00:00Z", "x" * 10), ("b", "2026-11-18T15:00:00Z", "y" * 11)]
    )

    cleaned, issues = clean_texts(frame, symbol="AAA", max_chars=10)

    assert cleaned["text"].tolist() == ["x" * 10, "y" * 10]
    assert issues == ["AAA: truncated 1 text longer than 10 characters"]


def test_texts_come_out_in_publication_order_then_by_id() -> None:
    frame = texts(
        [
            ("b", "2026-11-18T15:00:00Z", "second"),
            ("c", "2026-11-17T15:00:00Z", "first"),
            ("a", "2026-11-18T15:00:00Z", "also second"),
        ]
    )

    cleaned, _ = clean_texts(frame, symbol="AAA")

    assert cleaned["id"].tolist() == ["c", "a", "b"]


def test_the_bars_served_are_the_last_days_up_to_the_day_asked_for() -> None:
    days = pd.bdate_range("2026-11-02", "2026-11-27").date
    frame = pd.DataFrame({"date": days, "close": np.arange(len(days), dtype=float)})
    as_of = dt.date(2026, 11, 20)

    assert restrict_bars(frame, as_of=as_of, days=3)["date"].tolist() == [
        dt.date(2026, 11, 18),
        dt.date(2026, 11, 19),
        as_of,
    ]
    assert restrict_bars(frame, as_of=as_of, days=100)["date"].iloc[-1] == as_of
    assert len(restrict_bars(frame, as_of=as_of, days=100)) == 15
    assert restrict_bars(frame, as_of=as_of, days=0).empty
    assert restrict_bars(frame, as_of=as_of, days=-1).empty


def test_the_texts_served_are_those_of_the_days_asked_for_both_ends_included() -> None:
    frame = pd.DataFrame({"id": list("abcd"), "date": pd.bdate_range("2026-11-16", periods=4).date})

    served = restrict_texts(frame, start=dt.date(2026, 11, 17), end=dt.date(2026, 11, 18))

    assert served["id"].tolist() == ["b", "c"]
    assert served.index.tolist() == [0, 1]
