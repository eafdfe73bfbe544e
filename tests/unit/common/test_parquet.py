"""Data frames to Parquet bytes and back, as the object store keeps bars, texts and features."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from marketsense.common.parquet import from_parquet_bytes, to_parquet_bytes

UNREADABLE = (pa.ArrowInvalid, OSError)
"""What Arrow raises for bytes it cannot read: a bad size or magic is invalid, a corrupt footer
an I/O error."""


def bars(days: int) -> pd.DataFrame:
    """Daily bars as ingestion stores them, with the column types every stage reads."""
    dates = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(days)]
    close = np.linspace(100.0, 200.0, days)
    return pd.DataFrame(
        {
            "date": dates,
            "close": close,
            "volume": np.arange(days, dtype="int64") * 1000,
            "halted": [i % 7 == 0 for i in range(days)],
            "headline": [f"Ünïcode ✓ headline {i}" for i in range(days)],
            "fetched_at": pd.date_range("2026-01-01 21:00", periods=days, freq="D", tz="UTC"),
        }
    )


def test_a_frame_round_trips_with_its_column_types() -> None:
    frame = bars(60)

    back = from_parquet_bytes(to_parquet_bytes(frame))

    pd.testing.assert_frame_equal(back, frame)
    assert isinstance(back["date"].iloc[0], dt.date)
    assert str(back["fetched_at"].dt.tz) == "UTC"


def test_missing_values_stay_missing() -> None:
    frame = pd.DataFrame({"score": [0.5, np.nan, -0.25], "source": ["rss", None, "x"]})

    back = from_parquet_bytes(to_parquet_bytes(frame))

    assert np.isnan(back["score"].iloc[1])
    assert pd.isna(back["source"].iloc[1])
    pd.testing.assert_frame_equal(back, frame)


def test_the_index_is_not_stored() -> None:
    frame = bars(5).set_index("date")

    back = from_parquet_bytes(to_parquet_bytes(frame))

    assert list(back.columns) == list(frame.columns)
    assert isinstance(back.index, pd.RangeIndex)
    assert back["close"].tolist() == frame["close"].tolist()


def test_an_empty_frame_keeps_its_columns() -> None:
    frame = bars(3).iloc[:0]

    back = from_parquet_bytes(to_parquet_bytes(frame))

    assert back.empty
    assert list(back.columns) == list(frame.columns)


def test_the_bytes_are_a_zstd_compressed_parquet_file() -> None:
    frame = bars(10_000)

    data = to_parquet_bytes(frame)

    metadata = pq.ParquetFile(pa.BufferReader(data)).metadata
    assert data[:4] == data[-4:] == b"PAR1"
    assert metadata.num_rows == 10_000
    row_group = metadata.row_group(0)
    assert {row_group.column(i).compression for i in range(row_group.num_columns)} == {"ZSTD"}


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"date,close\n2026-11-20,101.5\n", id="csv"),
        pytest.param(b"PAR1" + b"\x00" * 64 + b"PAR1", id="parquet-magic-only"),
    ],
)
def test_bytes_that_are_not_parquet_are_refused(data: bytes) -> None:
    with pytest.raises(UNREADABLE):
        from_parquet_bytes(data)


def test_a_truncated_file_is_refused() -> None:
    data = to_parquet_bytes(bars(100))

    with pytest.raises(UNREADABLE):
        from_parquet_bytes(data[: len(data) // 2])
