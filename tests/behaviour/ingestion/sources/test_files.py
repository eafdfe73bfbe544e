"""FileSource on CSV and Parquet: the window it serves, each bad input cleaned or rejected, and
files as exports write them (daylight-saving offsets, US dates, weekend and holiday rows)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketsense.common.calendar import exchange_calendar
from marketsense.common.errors import NonRetryableError
from marketsense.common.tasks import notes_of
from marketsense.ingestion.sources.base import BAR_COLUMNS, TEXT_COLUMNS, SourceRejected
from marketsense.ingestion.sources.files import FileSource

AS_OF = dt.date(2026, 11, 20)  # a Friday


@pytest.fixture(params=["csv", "parquet"])
def fmt(request: pytest.FixtureRequest) -> str:
    """The file format a test writes its inputs in."""
    return str(request.param)


def write(root: Path, kind: str, symbol: str, frame: pd.DataFrame, fmt: str) -> None:
    """Write `frame` as `<root>/<kind>/<symbol>.<fmt>`."""
    folder = root / kind
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        frame.to_csv(folder / f"{symbol}.csv", index=False)
    else:
        frame.to_parquet(folder / f"{symbol}.parquet", index=False)


def bars_frame(start: str = "2026-09-01", end: str = "2026-11-27") -> pd.DataFrame:
    """Valid bars for every XNYS session from `start` to `end`, dates as ISO strings."""
    sessions = exchange_calendar().sessions(
        dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    )
    dates = pd.DatetimeIndex(sessions)
    close = np.linspace(100, 120, len(dates))
    return pd.DataFrame(
        {
            "date": dates.strftime("%Y-%m-%d"),
            "open": close - 0.5,
            "high": close + 1,
            "low": close - 1,
            "close": close,
            "volume": np.full(len(dates), 1e6),
        }
    )


def texts_frame(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    """Texts from (id, published_at, text) rows."""
    return pd.DataFrame(rows, columns=["id", "published_at", "text"])


async def test_serves_the_last_days_up_to_as_of_and_the_texts_of_those_days(
    tmp_path: Path, fmt: str
) -> None:
    write(tmp_path, "bars", "AAPL", bars_frame(), fmt)
    texts = texts_frame(
        [
            ("a", "2026-11-20T14:00:00Z", "Apple beats estimates"),  # 09:00 New York: that day
            ("b", "2026-11-20T21:30:00Z", "After the close"),  # 16:30 New York: next trading day
            ("c", "2026-11-15T12:00:00Z", "Weekend note"),  # Sunday: counts for Monday the 16th
            ("d", "2026-11-19T21:05:00Z", "Late on Thursday"),  # after the close: Friday the 20th
            ("e", "2026-10-01T12:00:00Z", "Too old for the window"),
        ]
    )
    write(tmp_path, "texts", "AAPL", texts, fmt)

    data = await FileSource(tmp_path).fetch("AAPL", as_of=AS_OF, days=21)

    assert list(data.bars.columns) == list(BAR_COLUMNS)
    assert len(data.bars) == 21
    assert data.bars["date"].iloc[-1] == AS_OF  # the rows after as_of are not served
    assert isinstance(data.bars["date"].iloc[0], dt.date)
    assert data.bars["close"].dtype == "float64"
    assert list(data.texts.columns) == list(TEXT_COLUMNS)
    by_id = data.texts.set_index("id")["date"].to_dict()
    assert by_id == {"c": dt.date(2026, 11, 16), "d": AS_OF, "a": AS_OF}
    assert set(data.texts["source"]) == {"file"}
    assert data.issues == []


async def test_a_symbol_without_a_bars_file_is_rejected_and_one_without_texts_has_none(
    tmp_path: Path, fmt: str
) -> None:
    write(tmp_path, "bars", "MSFT", bars_frame(), fmt)
    source = FileSource(tmp_path)
    with pytest.raises(SourceRejected, match="no bars for AAPL"):
        await source.fetch("AAPL", as_of=AS_OF, days=21)
    data = await source.fetch("MSFT", as_of=AS_OF, days=21)
    assert len(data.bars) == 21
    assert data.texts.empty
    assert list(data.texts.columns) == list(TEXT_COLUMNS)


async def test_bars_missing_columns_are_rejected_naming_them(tmp_path: Path, fmt: str) -> None:
    write(tmp_path, "bars", "AAPL", bars_frame().drop(columns=["volume", "low"]), fmt)
    with pytest.raises(SourceRejected, match="bars lack columns low, volume"):
        await FileSource(tmp_path).fetch("AAPL", as_of=AS_OF, days=21)


async def test_texts_missing_columns_are_rejected_naming_them(tmp_path: Path, fmt: str) -> None:
    write(tmp_path, "bars", "AAPL", bars_frame(), fmt)
    write(tmp_path, "texts", "AAPL", pd.DataFrame({"id": ["a"], "body": ["x"]}), fmt)
    with pytest.raises(SourceRejected, match="texts lack columns published_at, text"):
        await FileSource(tmp_path).fetch("AAPL", as_of=AS_OF, days=21)


async def test_rows_with_bad_prices_or_volumes_are_dropped_with_the_reason(
    tmp_path: Path, fmt: str
) -> None:
    bars = bars_frame()
    day = {d: i for i, d in enumerate(bars["date"])}
    bars.loc[day["2026-11-02"], "close"] = -5.0
    bars.loc[day["2026-11-03"], "open"] = 0.0
    bars.loc[day["2026-11-04"], "high"] = np.nan
    bars.loc[day["2026-11-05"], "volume"] = -1.0
    bars.loc[day["2026-11-06"], ["high", "low"]] = [90.0, 130.0]
    bars.loc[day["2026-11-09"], "high"] = 50.0  # below the open and close, above the low
    bars.loc[day["2026-11-09"], "low"] = 40.0
    write(tmp_path, "bars", "AAPL", bars, fmt)

    data = await FileSource(tmp_path).fetch("AAPL", as_of=AS_OF, days=21)

    served = {d.isoformat() for d in data.bars["date"]}
    assert served.isdisjoint({"2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05", "2026-11-06"})
    assert len(data.bars) == 21  # the window reaches further back to make up for them
    assert data.issues == [
        "AAPL: dropped 1 row with a missing price",
        "AAPL: dropped 2 rows with a zero or negative price",
        "AAPL: dropped 1 row with a negative volume",
        "AAPL: dropped 1 row with the high below the low",
        "AAPL: widened the high or low of 1 row to take in the open and close",
    ]
    widened = data.bars[data.bars["date"] == dt.date(2026, 11, 9)].iloc[0]
    assert widened["high"] == max(widened["open"], widened["close"])
    assert widened["low"] == 40.0


async def test_duplicate_dates_keep_the_last_row_and_say_so(tmp_path: Path, fmt: str) -> None:
    bars = bars_frame()
    correction = bars[bars["date"] == "2026-11-18"].assign(close=111.0, low=110.0)
    write(tmp_path, "bars", "AAPL", pd.concat([bars, correction], ignore_index=True), fmt)

    data = await FileSource(tmp_path).fetch("AAPL", as_of=AS_OF, days=21)

    row = data.bars[data.bars["date"] == dt.date(2026, 11, 18)]
    assert len(row) == 1
    assert row["close"].iloc[0] == 111.0
    assert data.bars["date"].is_unique
    assert data.issues[0] == "AAPL: dropped 1 row repeating a later row's date (kept the last)"
    assert data.issues[1].startswith("AAPL: sorted the bars by date")  # the correction came last


async def test_out_of_order_rows_are_sorted_and_say_so(tmp_path: Path, fmt: str) -> None:
    bars = bars_frame()
    shuffled = bars.sample(frac=1.0, random_state=3).reset_index(drop=True)
    write(tmp_path, "bars", "AAPL", shuffled, fmt)

    data = await FileSource(tmp_path).fetch("AAPL", as_of=AS_OF, days=21)

    expected = bars[bars["date"] <= AS_OF.isoformat()].tail(21)
    assert [d.isoformat() for d in data.bars["date"]] == expected["date"].tolist()
    np.testing.assert_allclose(data.bars["close"], expected["close"])
    assert len(data.issues) == 1
    assert data.issues[0].startswith("AAPL: sorted the bars by date (")


async def test_us_style_dates_are_refused_naming_the_column_row_and_value(
    tmp_path: Path, fmt: str
) -> None:
    bars = bars_frame()
    bars["date"] = pd.to_datetime(bars["date"]).dt.strftime("%m/%d/%Y")
    write(tmp_path, "bars", "AAPL", bars, fmt)

    with pytest.raises(SourceRejected) as raised:
        await FileSource(tmp_path).fetch("AAPL", as_of=AS_OF, days=21)

    assert isinstance(raised.value, NonRetryableError)
    assert str(raised.value) == (
        "files: bars for AAPL: column date, row 1: cannot read '09/01/2026' as a date "
        f"(use ISO 8601, e.g. 2024-03-15); {len(bars)} of {len(bars)} rows of that column are "
        "unreadable"
    )


async def test_one_unreadable_date_among_good_ones_is_refused_at_its_row(
    tmp_path: Path, fmt: str
) -> None:
    bars = bars_frame()
    bars.loc[6, "date"] = "not a date"
    write(tmp_path, "bars", "AAPL", bars, fmt)

    with pytest.raises(SourceRejected, match="column date, row 7: cannot read 'not a date'"):
        await FileSource(tmp_path).fetch("AAPL", as_of=AS_OF, days=21)


async def test_daylight_saving_offsets_in_one_file_are_read_each_on_its_own_day(
    tmp_path: Path, fmt: str
) -> None:
    # As many exports write daily bars: the close's time with that day's offset from UTC.
    bars = bars_frame("2026-02-02", "2026-03-31")
    offsets = np.where(bars["date"] < "2026-03-08", "-05:00", "-04:00")  # ISO dates sort as text
    bars["date"] = bars["date"] + "T16:00:00" + offsets
    write(tmp_path, "bars", "AAPL", bars, fmt)

    data = await FileSource(tmp_path).fetch("AAPL", as_of=dt.date(2026, 3, 13), days=10)

    assert [d.isoformat() for d in data.bars["date"]] == [
        "2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05", "2026-03-06",
        "2026-03-09", "2026-03-10", "2026-03-11", "2026-03-12", "2026-03-13",
    ]  # fmt: skip
    assert data.issues == []


async def test_bars_on_weekends_and_holidays_are_dropped_with_a_note(
    tmp_path: Path, fmt: str
) -> None:
    bars = bars_frame()
    every_weekday = pd.bdate_range("2026-09-01", "2026-11-27").strftime("%Y-%m-%d")
    extra = pd.DataFrame({"date": ["2026-11-14", "2026-11-15"]})  # a weekend
    filled = pd.concat([pd.DataFrame({"date": every_weekday}), extra], ignore_index=True)
    rows = filled.merge(bars, on="date", how="left").ffill()  # holidays repeat the day before
    write(tmp_path, "bars", "AAPL", rows, fmt)

    data = await FileSource(tmp_path).fetch("AAPL", as_of=AS_OF, days=21)

    assert data.issues[0] == (
        "AAPL: dropped 4 rows dated on days XNYS does not trade: 2026-09-07, 2026-11-14, "
        "2026-11-15, 2026-11-26"
    )
    assert [d.isoformat() for d in data.bars["date"]] == bars[bars["date"] <= "2026-11-20"][
        "date"
    ].tail(21).tolist()


async def test_a_file_pandas_cannot_handle_is_rejected_not_retried(tmp_path: Path) -> None:
    (tmp_path / "bars").mkdir()
    (tmp_path / "bars" / "AAPL.csv").write_text('date,open,high,low,close,volume\n"2026-11-02,1\n')

    with pytest.raises(SourceRejected, match=r"files: cannot read AAPL\.csv for AAPL"):
        await FileSource(tmp_path).fetch("AAPL", as_of=AS_OF, days=21)


async def test_texts_that_fail_the_symbol_keep_the_notes_of_its_bars(tmp_path: Path) -> None:
    bars = pd.concat(
        [bars_frame(), pd.DataFrame([{**bars_frame().iloc[-1], "date": "2026-11-28"}])]
    )
    write(tmp_path, "bars", "AAPL", bars, "csv")
    write(tmp_path, "texts", "AAPL", pd.DataFrame({"id": ["a"], "body": ["x"]}), "csv")

    with pytest.raises(SourceRejected, match="texts lack columns") as raised:
        await FileSource(tmp_path).fetch("AAPL", as_of=AS_OF, days=21)

    assert notes_of(raised.value) == [
        "AAPL: dropped 1 row dated on days XNYS does not trade: 2026-11-28"
    ]


async def test_empty_over_long_and_repeated_texts_are_cleaned_with_the_reason(
    tmp_path: Path, fmt: str
) -> None:
    write(tmp_path, "bars", "AAPL", bars_frame(), fmt)
    texts = texts_frame(
        [
            ("ok", "2026-11-18T15:00:00Z", "  Apple raises guidance  "),
            ("blank", "2026-11-18T15:00:00Z", "   "),
            ("empty", "2026-11-18T15:00:00Z", ""),
            ("long", "2026-11-18T15:00:00Z", "word " * 400),
            ("ok", "2026-11-19T15:00:00Z", "A second item reusing the id"),
            ("when", "yesterday-ish", "No readable time"),
        ]
    )
    write(tmp_path, "texts", "AAPL", texts, fmt)

    data = await FileSource(tmp_path, max_chars=100).fetch("AAPL", as_of=AS_OF, days=21)

    assert data.texts["id"].tolist() == ["long", "ok"]  # sorted by time, then id
    assert data.texts["text"].iloc[1] == "Apple raises guidance"
    assert len(data.texts["text"].iloc[0]) == 100
    assert data.issues == [
        "AAPL: dropped 1 text without a readable publication time",
        "AAPL: dropped 2 texts with an empty body",
        "AAPL: truncated 1 text longer than 100 characters",
        "AAPL: dropped 1 text repeating an earlier id (kept the first)",
    ]


async def test_optional_text_columns_are_used_when_present(tmp_path: Path, fmt: str) -> None:
    write(tmp_path, "bars", "AAPL", bars_frame(), fmt)
    texts = texts_frame([("a", "2026-11-18T15:00:00Z", "x"), ("b", "2026-11-18T15:00:00Z", "y")])
    texts["source"] = ["newswire", None]
    texts["date"] = ["2026-11-19", None]  # a given date wins; a missing one is derived
    write(tmp_path, "texts", "AAPL", texts, fmt)

    data = await FileSource(tmp_path).fetch("AAPL", as_of=AS_OF, days=21)

    assert data.texts.set_index("id")["source"].to_dict() == {"a": "newswire", "b": "file"}
    assert data.texts.set_index("id")["date"].to_dict() == {
        "a": dt.date(2026, 11, 19),
        "b": dt.date(2026, 11, 18),
    }


@pytest.mark.parametrize("symbol", ["../secrets", "a/b", ".hidden", ""])
async def test_a_symbol_that_would_leave_the_folder_is_rejected(
    tmp_path: Path, symbol: str
) -> None:
    with pytest.raises(SourceRejected, match="cannot name a file"):
        await FileSource(tmp_path / "root").fetch(symbol, as_of=AS_OF, days=21)


async def test_an_unreadable_file_is_rejected_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "bars").mkdir()
    (tmp_path / "bars" / "AAPL.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(SourceRejected, match=r"cannot read AAPL\.parquet"):
        await FileSource(tmp_path).fetch("AAPL", as_of=AS_OF, days=21)
