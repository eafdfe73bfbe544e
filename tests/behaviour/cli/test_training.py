"""The baseline predictor built from the simulated market: trained only on days before the run it
will score, on symbols no real ticker shares, and saying where its data came from."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from marketsense.cli.defaults import holdout_set_path
from marketsense.cli.demo import DEMO_UNIVERSE, demo_symbols
from marketsense.cli.training import (
    TRAINING_BARS,
    TRAINING_DAYS,
    build_baseline,
    training_symbols,
)
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.models.evaluation import predictor_metrics, read_predictor_set
from marketsense.models.predictor import OnnxPredictor, PredictorManifest
from marketsense.models.sentiment import SentimentModel

MONDAY = dt.date(2026, 11, 23)


class RecordingMarket(SimulatedMarket):
    """The simulated market, remembering what it was asked for."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed=seed)
        self.asked: list[tuple[str, str, dt.date, int]] = []

    def daily_bars(self, symbol: str, *, as_of: dt.date, days: int) -> pd.DataFrame:
        """The bars, recording the request."""
        self.asked.append(("bars", symbol, as_of, days))
        return super().daily_bars(symbol, as_of=as_of, days=days)

    def texts(self, symbol: str, *, as_of: dt.date, days: int) -> pd.DataFrame:
        """The texts, recording the request."""
        self.asked.append(("texts", symbol, as_of, days))
        return super().texts(symbol, as_of=as_of, days=days)


def test_training_symbols_are_numbered_and_never_a_demo_ticker() -> None:
    names = training_symbols(120)

    assert training_symbols(3) == ["TRAIN000", "TRAIN001", "TRAIN002"]
    assert len(set(names)) == 120
    assert not set(names) & set(demo_symbols(len(DEMO_UNIVERSE) + 120))
    assert training_symbols(0) == []


def test_the_baseline_is_trained_on_the_days_before_the_run_it_will_score(
    tmp_path: Path, sentiment_model_dir: Path
) -> None:
    market = RecordingMarket(seed=3)
    sentiment = SentimentModel(sentiment_model_dir, quantized=True, threads=2)
    out = tmp_path / "predictor"

    manifest = build_baseline(
        out,
        as_of=MONDAY,
        symbols=5,
        market=market,
        sentiment=sentiment,
        console=Console(quiet=True),
    )

    sunday = MONDAY - dt.timedelta(days=1)
    assert sorted(market.asked) == sorted(
        (kind, symbol, sunday, days)
        for kind, days in (("bars", TRAINING_BARS), ("texts", TRAINING_DAYS))
        for symbol in training_symbols(5)
    )
    assert dt.date.fromisoformat(manifest.training["holdout_end"]) <= dt.date(2026, 11, 20)
    assert manifest.training["symbols"] == "5"
    # Every training day has a feature row: the warm-up comes on top of the training days.
    first, last = manifest.training["train_start"], manifest.training["holdout_end"]
    span = market.daily_bars("TRAIN000", as_of=sunday, days=TRAINING_DAYS)["date"]
    assert (first, last) == (span.iloc[0].isoformat(), span.iloc[-2].isoformat())
    assert manifest.training["source"] == (
        f"simulated market, seed 3; texts scored by "
        f"{sentiment.manifest.name} v{sentiment.manifest.version}"
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "feature_reference.parquet",
        "manifest.json",
        "model.onnx",
    ]
    assert json.loads((out / "manifest.json").read_text())["metrics"] == manifest.metrics
    assert 0.0 <= manifest.metrics["holdout_auc"] <= 1.0


def test_the_holdout_rows_are_written_beside_the_predictor_as_its_evaluation_set(
    predictor_dir: Path,
) -> None:
    manifest = PredictorManifest.model_validate_json((predictor_dir / "manifest.json").read_text())
    holdout = holdout_set_path(predictor_dir)

    data = read_predictor_set(holdout.read_bytes())
    measured = predictor_metrics(OnnxPredictor(predictor_dir), data)

    assert holdout.parent == predictor_dir.parent
    # The bundle's only Parquet file is its feature reference, not the evaluation set.
    assert [p.name for p in predictor_dir.iterdir() if p.suffix == ".parquet"] == [
        "feature_reference.parquet"
    ]
    # The very rows the trainer evaluated on: the same count and the same scores.
    assert measured["holdout_rows"] == manifest.metrics["holdout_rows"]
    assert measured["holdout_auc"] == pytest.approx(manifest.metrics["holdout_auc"], abs=1e-3)
    dates = pd.to_datetime(data.frame["date"])
    assert dates.min() == pd.Timestamp(manifest.training["train_end"])
    assert dates.max() == pd.Timestamp(manifest.training["holdout_end"])
