"""A predictor's feature reference: written from training rows, stored with the version and
checksummed like every bundle file, and refused at push, naming the file, whenever it is bad."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketsense.common.features import FEATURE_COLUMNS
from marketsense.common.parquet import to_parquet_bytes
from marketsense.common.store import ObjectStore
from marketsense.models.bundles import pack_bundle
from marketsense.models.checks import InvalidUpload, check_upload
from marketsense.models.feature_reference import (
    MAX_REFERENCE_BYTES,
    MAX_REFERENCE_ROWS,
    read_feature_reference,
    sample_reference,
    write_feature_reference,
)
from marketsense.models.files import FEATURE_REFERENCE_FILE
from marketsense.models.integrity import file_sha256
from tests.artifacts import list_manifest_files
from tests.behaviour.models.pushes import PREDICTOR, refused
from tests.registry_support import Registry


def _rows(count: int, seed: int = 1) -> pd.DataFrame:
    """Feature rows as training holds them: sentiment missing on days without texts."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(count, len(FEATURE_COLUMNS))), columns=FEATURE_COLUMNS)
    quiet = rng.uniform(size=count) < 0.4
    frame.loc[quiet, ["sentiment_mean", "sentiment_strongest"]] = np.nan
    frame.loc[quiet, ["sentiment_count", "has_sentiment"]] = 0.0
    return frame


def _check(folder: Path, tmp_path: Path) -> dict[str, object]:
    """Run the registry's checks on a folder as pushed."""
    (tmp_path / "unpacked").mkdir(exist_ok=True)
    return check_upload(
        kind="predictor",
        model_name=PREDICTOR,
        manifest_bytes=(folder / "manifest.json").read_bytes(),
        bundle=io.BytesIO(pack_bundle(folder)),
        directory=tmp_path / "unpacked",
        max_unpacked_bytes=64 << 20,
    ).checks


def test_the_sample_is_seeded_bounded_and_float32() -> None:
    table = _rows(12_000).assign(symbol="AAA")

    first, again, other = (sample_reference(table, seed=s) for s in (0, 0, 1))

    assert len(first) == MAX_REFERENCE_ROWS
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)
    assert list(first.columns) == list(FEATURE_COLUMNS)
    assert set(first.dtypes) == {np.dtype(np.float32)}
    assert len(sample_reference(table.head(300))) == 300


def test_a_good_reference_passes_and_its_rows_are_recorded(predictor: Path, tmp_path: Path) -> None:
    write_feature_reference(predictor, _rows(800))
    list_manifest_files(predictor)

    assert _check(predictor, tmp_path) == {"files": 2, "feature_reference_rows": 800}


def test_a_bundle_without_a_reference_stays_valid(predictor: Path, tmp_path: Path) -> None:
    assert _check(predictor, tmp_path) == {"files": 1}


def _write(frame: pd.DataFrame) -> Callable[[Path], object]:
    return lambda path: path.write_bytes(to_parquet_bytes(frame))


def _with(column: str, row: int, value: float) -> pd.DataFrame:
    frame = _rows(200)
    frame.loc[row, column] = value
    return frame


BAD_REFERENCES: dict[str, tuple[Callable[[Path], object], str]] = {
    "not parquet": (
        lambda path: path.write_bytes(b"symbol,ret_1d\nAAA,0.1\n"),
        "feature_reference.parquet is not a Parquet file",
    ),
    "too many rows": (
        _write(_rows(MAX_REFERENCE_ROWS + 1)),
        f"feature_reference.parquet has {MAX_REFERENCE_ROWS + 1} rows; it must hold 1 to 5000",
    ),
    "no rows": (_write(_rows(0)), "feature_reference.parquet has 0 rows"),
    "an unknown column": (
        _write(_rows(50).assign(close=1.0)),
        "feature_reference.parquet has columns ['close'] that are not feature columns",
    ),
    "text in a feature": (
        _write(_rows(50).assign(rsi_14="high")),
        "feature_reference.parquet column 'rsi_14' holds str, not numbers",
    ),
    "an infinite value": (
        _write(_with("volatility_20d", 7, np.inf)),
        "feature_reference.parquet column 'volatility_20d' holds infinite values",
    ),
    "a missing value where none may be": (
        _write(_with("ret_5d", 3, np.nan)),
        "feature_reference.parquet column 'ret_5d' has 1 missing values; only ['rsi_14'",
    ),
    "too large": (
        lambda path: path.write_bytes(np.random.default_rng(0).bytes(MAX_REFERENCE_BYTES + 1)),
        f"feature_reference.parquet has {MAX_REFERENCE_BYTES + 1} bytes; at most",
    ),
}


@pytest.mark.parametrize("case", list(BAD_REFERENCES))
def test_a_bad_reference_is_refused_saying_what_is_wrong(
    case: str, predictor: Path, tmp_path: Path
) -> None:
    write, message = BAD_REFERENCES[case]
    write(predictor / FEATURE_REFERENCE_FILE)
    list_manifest_files(predictor)

    with pytest.raises(InvalidUpload) as refusal:
        _check(predictor, tmp_path)

    assert str(refusal.value).startswith(message)


def test_a_reference_the_manifest_does_not_list_or_that_changed_is_refused(
    predictor: Path, tmp_path: Path
) -> None:
    write_feature_reference(predictor, _rows(100))
    with pytest.raises(InvalidUpload, match=r"'feature_reference\.parquet' is not listed"):
        _check(predictor, tmp_path)

    list_manifest_files(predictor)
    write_feature_reference(predictor, _rows(100, seed=2))
    with pytest.raises(
        InvalidUpload, match=r"'feature_reference\.parquet' has sha256 [0-9a-f]{64}"
    ):
        _check(predictor, tmp_path)


def test_missing_values_are_allowed_where_the_feature_may_be_missing() -> None:
    frame = _with("rsi_14", 0, np.nan)

    read = read_feature_reference(to_parquet_bytes(frame))

    assert np.isnan(read["rsi_14"].iloc[0])
    assert read["sentiment_mean"].isna().any()


async def test_the_registry_stores_the_reference_with_its_checksum_and_refuses_a_bad_one(
    registry: Registry, store: ObjectStore, predictor: Path
) -> None:
    write_feature_reference(predictor, _rows(300))
    list_manifest_files(predictor)
    (predictor / FEATURE_REFERENCE_FILE).write_bytes(to_parquet_bytes(_with("macd", 1, np.inf)))
    list_manifest_files(predictor)

    detail = await refused(await registry.push(PREDICTOR, predictor), registry, PREDICTOR)
    assert detail == "feature_reference.parquet column 'macd' holds infinite values"

    write_feature_reference(predictor, _rows(300))
    list_manifest_files(predictor)
    pushed = await registry.push(PREDICTOR, predictor)

    assert pushed.status_code == 201, pushed.text
    files = {f["name"]: f for f in pushed.json()["files"]}
    stored = files[FEATURE_REFERENCE_FILE]
    assert stored["sha256"] == file_sha256(predictor / FEATURE_REFERENCE_FILE)
    data = await store.read_key(f"models/{PREDICTOR}/1/{FEATURE_REFERENCE_FILE}")
    assert data == (predictor / FEATURE_REFERENCE_FILE).read_bytes()
    assert len(read_feature_reference(data)) == 300
    assert pushed.json()["checks"]["feature_reference_rows"] == 300
