"""A predictor's feature reference: a seeded sample of its training feature rows, carried in its
bundle, that monitoring compares each run's features with to see drift before outcomes arrive."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from marketsense.common.features import FEATURE_COLUMNS
from marketsense.common.parquet import to_parquet_bytes
from marketsense.models.files import FEATURE_REFERENCE_FILE

MAX_REFERENCE_ROWS = 5000
"""Most rows a reference holds: enough for a two-sample test to see a shift of a few percent of a
standard deviation, small enough (about 200 kB) to ship with every version."""

MAX_REFERENCE_BYTES = 4 * 1024 * 1024
"""Largest reference file accepted; 5,000 rows of every feature take a tenth of it."""

MAY_BE_MISSING: tuple[str, ...] = (
    "rsi_14",
    "volume_z_20d",
    "sentiment_mean",
    "sentiment_pos_share",
    "sentiment_neg_share",
    "sentiment_strongest",
)
"""Features that are NaN by definition on some rows (flat prices, constant volume, a day without
texts); every other feature of a reference row must be a finite number."""

REFERENCE_SEED = 0
"""Seed of the sample an exporter draws, so the same training set gives the same file."""


class InvalidReference(ValueError):
    """A feature reference that monitoring could not compare with, saying what is wrong."""


def sample_reference(
    table: pd.DataFrame, *, rows: int = MAX_REFERENCE_ROWS, seed: int = REFERENCE_SEED
) -> pd.DataFrame:
    """At most `rows` rows of the table's feature columns, drawn without replacement with
    `seed`, as float32 (the precision features are stored and served in)."""
    picked = table if len(table) <= rows else table.sample(n=rows, random_state=seed)
    return picked[list(FEATURE_COLUMNS)].astype(np.float32).reset_index(drop=True)


def write_feature_reference(
    directory: Path, table: pd.DataFrame, *, seed: int = REFERENCE_SEED
) -> Path:
    """Write a sample of `table`'s feature rows into `directory` as the bundle's reference."""
    path = directory / FEATURE_REFERENCE_FILE
    path.write_bytes(to_parquet_bytes(sample_reference(table, seed=seed)))
    return path


def check_feature_reference(path: Path) -> int:
    """Check a bundle's reference file; return its rows or raise InvalidReference."""
    size = path.stat().st_size
    if size > MAX_REFERENCE_BYTES:
        raise InvalidReference(
            f"{FEATURE_REFERENCE_FILE} has {size} bytes; at most {MAX_REFERENCE_BYTES} "
            f"({MAX_REFERENCE_ROWS} sampled rows take far less)"
        )
    return len(read_feature_reference(path.read_bytes()))


def read_feature_reference(data: bytes) -> pd.DataFrame:
    """A reference's rows, checked: Parquet, 1 to MAX_REFERENCE_ROWS rows, only feature columns,
    numeric, finite or NaN where the feature may be missing. Raises InvalidReference."""
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as error:
        raise InvalidReference(
            f"{FEATURE_REFERENCE_FILE} is not a Parquet file: {error}"
        ) from error
    # The row count comes from the footer, before a highly compressed file is inflated.
    rows = parquet.metadata.num_rows
    if not 1 <= rows <= MAX_REFERENCE_ROWS:
        raise InvalidReference(
            f"{FEATURE_REFERENCE_FILE} has {rows} rows; it must hold 1 to {MAX_REFERENCE_ROWS}"
        )
    columns = list(parquet.schema_arrow.names)
    unknown = [c for c in columns if c not in FEATURE_COLUMNS]
    if unknown or not columns:
        raise InvalidReference(
            f"{FEATURE_REFERENCE_FILE} has columns {unknown or columns} that are not feature "
            f"columns; it holds only some of {list(FEATURE_COLUMNS)}"
        )
    try:
        frame: pd.DataFrame = parquet.read().to_pandas()
    except (pa.ArrowException, OSError) as error:
        raise InvalidReference(f"{FEATURE_REFERENCE_FILE} does not read: {error}") from error
    for column in columns:
        _check_column(column, frame[column])
    return frame.astype(np.float64)


def _check_column(name: str, values: pd.Series) -> None:
    """One column: numbers, none infinite, NaN only where the feature may be missing."""
    if values.dtype.kind not in "fiub":
        raise InvalidReference(
            f"{FEATURE_REFERENCE_FILE} column {name!r} holds {values.dtype}, not numbers"
        )
    numbers = values.to_numpy(np.float64)
    if np.isinf(numbers).any():
        raise InvalidReference(f"{FEATURE_REFERENCE_FILE} column {name!r} holds infinite values")
    missing = int(np.isnan(numbers).sum())
    if missing and name not in MAY_BE_MISSING:
        raise InvalidReference(
            f"{FEATURE_REFERENCE_FILE} column {name!r} has {missing} missing values; only "
            f"{list(MAY_BE_MISSING)} may be missing"
        )
