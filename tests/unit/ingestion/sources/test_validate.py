"""Cleaning bars and texts from any source: the session a text counts for, values read or
refused naming the column, row and value, rows dropped or fixed with the reason, and the windows
served."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from marketsense.common.calendar import exchange_calendar
from marketsense.ingestion.sources.base import BAR_COLUMNS, TEXT_COLUMNS, SourceRejected
from marketsense.ingestion.sources.validate import (
    clean_bars,
    clean_texts,
    rejecting,
    restrict_bars,
    restrict_texts,
)


def day_of(*stamps: str) -> list[dt.date]:
    """The sessions texts published at UTC timestamps count for, as cleaning derives them."""
    frame = pd.DataFrame(
        {"id": [str(i) for i in range(len(stamps))], "published_at": list(stamps), "text": "x"}
    )
    cleaned, _ = clean_texts(frame, symbol="AAA")
    return list(cleaned.sort_values("id")["date"])


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
        pytest.param("2026-11-26T15:00:00Z", dt.date(2026, 11, 27), id="thanksgiving-to-friday"),
        pytest.param("2026-11-25T21:30:00Z", dt.date(2026, 11, 27), id="after-close-before-it"),
        pytest.param("2026-11-27T17:59:00Z", dt.date(2026, 11, 27), id="before-early-close"),
        pytest.param("2026-11-27T18:00:00Z", dt.date(2026, 11, 30), id="after-early-close"),
        pytest.param("2026-12-31T22:00:00Z", dt.date(2027, 1, 4), id="new-year-weekend"),
    ],
)
def test_a_text_counts_for_the_first_session_whose_close_is_after_its_publication(
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
        pytest.param(["2026-03-06T16:00:00-05:00", "2026-03-09T16:00:00-04:00"], id="dst-close"),
        pytest.param(["2026-03-06T00:00:00+09:00", "2026-03-09"], id="offset-and-plain"),
        pytest.param(["2026-03-06T00:00:00Z", "2026-03-09T00:00:00Z"], id="utc"),
    ],
)
def test_bar_dates_with_offsets_keep_the_day_of_their_own_zone(dates: list[str]) -> None:
    frame = bars([(d, 10.0, 11.0, 9.0, 10.5, 100.0) for d in dates])

    cleaned, issues = clean_bars(frame, symbol="AAA")

    assert cleaned["date"].tolist() == [dt.date(2026, 3, 6), dt.date(2026, 3, 9)]
    assert issues == []


@pytest.mark.parametrize(
    ("column", "value", "kind"),
    [
        pytest.param("date", "03/15/2024", "a date (use ISO 8601, e.g. 2024-03-15)", id="us-date"),
        pytest.param("date", "garbled", "a date (use ISO 8601, e.g. 2024-03-15)", id="text-date"),
        pytest.param("close", "1,234.50", "a number", id="thousands-separator"),
        pytest.param("volume", "n/a", "a number", id="placeholder"),
    ],
)
def test_a_value_given_but_unreadable_rejects_the_symbol_naming_column_row_and_value(
    column: str, value: str, kind: str
) -> None:
    frame = bars([("2026-03-0" + str(d), "10", "11", "9", "10.5", "100") for d in (2, 3, 4, 5)])
    frame.loc[2, column] = value

    with pytest.raises(SourceRejected) as raised:
        clean_bars(frame, symbol="AAA", source="files")

    assert (
        str(raised.value)
        == f"files: bars for AAA: column {column}, row 3: cannot read {value!r} as {kind}"
    )
    assert not raised.value.__class__.__name__.startswith("Retryable")


def test_the_count_of_unreadable_values_follows_the_first_one() -> None:
    frame = bars([(f"03/0{d}/2026", 10.0, 11.0, 9.0, 10.5, 100.0) for d in (2, 3, 4)])

    with pytest.raises(SourceRejected, match=r"row 1: cannot read '03/02/2026' .*; 3 of 3 rows"):
        clean_bars(frame, symbol="AAA")


def test_missing_values_are_dropped_with_the_reason_not_refused() -> None:
    frame = bars(
        [
            (None, 10.0, 11.0, 9.0, 10.5, 100.0),
            ("", 10.0, 11.0, 9.0, 10.5, 100.0),
            ("2026-03-03", "", 11.0, 9.0, 10.5, 100.0),
            ("2026-03-04", 10.0, 11.0, 9.0, 10.5, 100.0),
        ]
    )

    cleaned, issues = clean_bars(frame, symbol="AAA")

    assert cleaned["date"].tolist() == [dt.date(2026, 3, 4)]
    assert issues == [
        "AAA: dropped 2 rows without a date",
        "AAA: dropped 1 row with a missing price",
    ]


def test_bars_dated_on_weekends_and_holidays_are_dropped_naming_the_days() -> None:
    days = ["2026-11-25", "2026-11-26", "2026-11-27", "2026-11-28", "2026-11-29", "2026-11-30"]
    frame = bars([(d, 10.0, 11.0, 9.0, 10.5, 100.0) for d in days])

    cleaned, issues = clean_bars(frame, symbol="AAA")

    assert cleaned["date"].tolist() == [
        dt.date(2026, 11, 25),
        dt.date(2026, 11, 27),  # the early close after Thanksgiving is a session
        dt.date(2026, 11, 30),
    ]
    assert issues == [
        "AAA: dropped 3 rows dated on days XNYS does not trade: 2026-11-26, 2026-11-28, 2026-11-29"
    ]


def test_another_exchange_drops_its_own_holidays() -> None:
    # Boxing Day: London is closed, New York trades.
    frame = bars([(d, 10.0, 11.0, 9.0, 10.5, 100.0) for d in ("2025-12-24", "2025-12-26")])

    london, issues = clean_bars(frame, symbol="VOD", calendar=exchange_calendar("XLON"))
    new_york, _ = clean_bars(frame, symbol="VOD")

    assert london["date"].tolist() == [dt.date(2025, 12, 24)]
    assert issues == ["VOD: dropped 1 row dated on days XLON does not trade: 2025-12-26"]
    assert len(new_york) == 2


def test_many_days_dropped_are_named_up_to_five_then_counted() -> None:
    weekends = pd.date_range("2026-01-03", periods=8, freq="W-SAT").strftime("%Y-%m-%d")
    frame = bars([(d, 10.0, 11.0, 9.0, 10.5, 100.0) for d in weekends])

    _, issues = clean_bars(frame, symbol="AAA")

    assert issues == [
        "AAA: dropped 8 rows dated on days XNYS does not trade: 2026-01-03, 2026-01-10, "
        "2026-01-17, 2026-01-24, 2026-01-31 and 3 more"
    ]


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


@pytest.mark.parametrize(
    "error",
    [KeyError("close"), TypeError("unhashable type: 'list'"), OverflowError("too big")],
    ids=["key", "type", "overflow"],
)
def test_any_failure_to_read_or_clean_rejects_instead_of_being_retried(error: Exception) -> None:
    with pytest.raises(SourceRejected) as raised, rejecting("files: AAPL.csv for AAPL"):
        raise error

    assert str(raised.value).startswith(
        f"files: AAPL.csv for AAPL: cannot be read: {type(error).__name__}"
    )
    assert raised.value.__cause__ is error


def test_a_rejection_inside_passes_through_unchanged() -> None:
    original = SourceRejected("AAA: bars lack columns close")
    with pytest.raises(SourceRejected) as raised, rejecting("files: AAA.csv for AAA"):
        raise original

    assert raised.value is original
