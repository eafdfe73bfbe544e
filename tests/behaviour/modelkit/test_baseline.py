"""Training the baseline predictor: its table, held-out metrics, ONNX parity and lineage.

A few simulated symbols over half a year (after the features' warm-up) keep each training to a
fraction of a second.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from marketsense.common.features import FEATURE_COLUMNS, MIN_BARS, TECHNICAL_COLUMNS
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.modelkit import baseline
from marketsense.modelkit.baseline import HOLDOUT_SHARE, train_baseline, training_table
from marketsense.models.feature_reference import (
    MAX_REFERENCE_ROWS,
    check_feature_reference,
    read_feature_reference,
)
from marketsense.models.files import FEATURE_REFERENCE_FILE
from marketsense.models.integrity import file_sha256
from marketsense.models.predictor import OnnxPredictor, PredictorManifest, warm_up_predictor

AS_OF = dt.date(2026, 11, 20)
SYMBOLS = ("AAA", "BBB", "CCC", "DDD")
DAYS = MIN_BARS + 130
"""Bars per symbol: the warm-up, then half a year of feature rows."""


@pytest.fixture(scope="module")
def market() -> SimulatedMarket:
    """The simulated market the predictors train on."""
    return SimulatedMarket(seed=3)


@pytest.fixture(scope="module")
def bars(market: SimulatedMarket) -> dict[str, pd.DataFrame]:
    """Half a year of bars per symbol."""
    return {s: market.daily_bars(s, as_of=AS_OF, days=DAYS) for s in SYMBOLS}


@pytest.fixture(scope="module")
def scored(market: SimulatedMarket) -> dict[str, pd.DataFrame]:
    """Each symbol's texts scored with their true tone, as a perfect sentiment model would."""
    scored: dict[str, pd.DataFrame] = {}
    for symbol in SYMBOLS:
        texts = market.texts(symbol, as_of=AS_OF, days=DAYS)
        tone = market.daily_tone(symbol, as_of=AS_OF, days=DAYS)
        scored[symbol] = pd.DataFrame({"date": texts["date"], "score": texts["date"].map(tone)})
    return scored


def holdout(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of the latest `HOLDOUT_SHARE` of dates, as the trainer holds them out."""
    dates = np.sort(table["date"].unique())
    cutoff = dates[int(len(dates) * (1 - HOLDOUT_SHARE))]
    rows: pd.DataFrame = table[table["date"] >= cutoff]
    return rows


def test_the_training_table_labels_every_symbol_day_with_the_next_days_move(
    bars: dict[str, pd.DataFrame],
) -> None:
    table = training_table(bars)

    assert set(table["symbol"]) == set(SYMBOLS)
    assert {"date", "symbol", "label", *FEATURE_COLUMNS} <= set(table.columns)
    assert not table[list(TECHNICAL_COLUMNS)].isna().any().any()
    for symbol, frame in bars.items():
        rows = table[table["symbol"] == symbol].set_index("date")
        up = pd.Series((frame["close"].shift(-1) > frame["close"]).to_numpy(), index=frame["date"])
        assert (rows["label"] == up.reindex(rows.index)).all(), symbol
        # The last day has no next day to label; the warm-up days have no features.
        assert frame["date"].iloc[-1] not in rows.index
        assert len(rows) == len(frame) - MIN_BARS


def test_days_with_flat_prices_are_trained_and_served_with_rsi_imputed(
    bars: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    flat = bars["AAA"].copy()
    flat.loc[flat.index[-60:], ["open", "high", "low", "close"]] = flat["close"].iloc[-61]
    with_flat = {**bars, "FLAT": flat}

    table = training_table(with_flat)
    train_baseline(with_flat, tmp_path)

    missing = table[table["rsi_14"].isna()]
    assert set(missing["symbol"]) == {"FLAT"}
    assert len(missing) >= 40  # flat for 60 days: RSI is missing once 14 of them passed
    probs = OnnxPredictor(tmp_path).predict_up(missing[list(FEATURE_COLUMNS)].to_numpy(np.float32))
    assert np.isfinite(probs).all()
    assert ((probs > 0) & (probs < 1)).all()


def test_without_scored_texts_every_day_is_marked_as_having_no_sentiment(
    bars: dict[str, pd.DataFrame], scored: dict[str, pd.DataFrame]
) -> None:
    without = training_table(bars)
    with_texts = training_table(bars, scored)

    assert (without["has_sentiment"] == 0).all()
    assert without["sentiment_mean"].isna().all()
    assert with_texts["has_sentiment"].mean() > 0.5
    assert len(with_texts) == len(without)


def test_the_exported_graph_reproduces_the_metrics_it_claims(
    bars: dict[str, pd.DataFrame], scored: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    manifest = train_baseline(bars, tmp_path, scored_texts_by_symbol=scored, version="4")

    test = holdout(training_table(bars, scored))
    served = OnnxPredictor(tmp_path)
    warm_up_predictor(served)
    probs = served.predict_up(test[list(FEATURE_COLUMNS)].to_numpy(np.float32))
    labels = test["label"].astype(int)
    metrics = manifest.metrics
    assert metrics["holdout_rows"] == len(test)
    assert metrics["holdout_accuracy"] == pytest.approx(accuracy_score(labels, probs >= 0.5))
    assert metrics["holdout_auc"] == pytest.approx(roc_auc_score(labels, probs), abs=1e-4)
    assert metrics["base_rate_up"] == pytest.approx(labels.mean())
    assert metrics["holdout_log_loss"] > 0
    assert PredictorManifest.model_validate_json((tmp_path / "manifest.json").read_text()) == (
        manifest
    )


def test_the_manifest_records_what_the_predictor_was_trained_and_judged_on(
    bars: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    manifest = train_baseline(bars, tmp_path, name="nightly", source="files")

    table = training_table(bars)
    dates = sorted(table["date"].unique())
    cutoff = holdout(table)["date"].min()
    assert (manifest.name, manifest.version) == ("nightly", "1")
    assert manifest.features == list(FEATURE_COLUMNS)
    assert manifest.training == {
        "source": "files",
        "trainer": "logistic",
        "symbols": str(len(SYMBOLS)),
        "train_start": dates[0].isoformat(),
        "train_end": cutoff.isoformat(),
        "holdout_end": dates[-1].isoformat(),
    }
    assert manifest.evaluation_window == f"files {cutoff.isoformat()}..{dates[-1].isoformat()}"


def test_the_bundle_carries_a_seeded_sample_of_the_training_rows_as_its_feature_reference(
    bars: dict[str, pd.DataFrame], scored: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    manifest = train_baseline(bars, tmp_path / "a", scored_texts_by_symbol=scored)
    again = train_baseline(bars, tmp_path / "b", scored_texts_by_symbol=scored)

    path = tmp_path / "a" / FEATURE_REFERENCE_FILE
    listed = {f.name: f for f in manifest.files}
    assert listed[FEATURE_REFERENCE_FILE].sha256 == file_sha256(path)
    assert (
        listed[FEATURE_REFERENCE_FILE] == {f.name: f for f in again.files}[FEATURE_REFERENCE_FILE]
    )
    reference = read_feature_reference(path.read_bytes())
    table = training_table(bars, scored)
    train = table[table["date"] < holdout(table)["date"].min()]
    assert len(reference) == min(len(train), MAX_REFERENCE_ROWS)
    assert list(reference.columns) == list(FEATURE_COLUMNS)
    # Every reference row is a training row: none comes from the held-out days.
    keys = train[list(FEATURE_COLUMNS)].astype(np.float32).round(6).fillna(-999)
    drawn = reference.astype(np.float32).round(6).fillna(-999)
    assert len(drawn.merge(keys.drop_duplicates(), how="inner")) == len(drawn)
    assert check_feature_reference(path) == len(reference)


def test_an_export_that_disagrees_with_the_trained_model_is_refused(
    bars: dict[str, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Drifting(OnnxPredictor):
        """A served graph a thousandth away from what was trained."""

        def predict_up(self, rows: np.ndarray) -> np.ndarray:
            return super().predict_up(rows) + 1e-3

    monkeypatch.setattr(baseline, "OnnxPredictor", Drifting)

    with pytest.raises(RuntimeError, match="ONNX export disagrees with the trained model"):
        train_baseline(bars, tmp_path)
