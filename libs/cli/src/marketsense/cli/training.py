"""Build the baseline predictor from the simulated market, texts scored by the sentiment model."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import Progress

from marketsense.cli.defaults import holdout_set_path
from marketsense.common.features import FEATURE_COLUMNS, WARMUP_BARS
from marketsense.common.parquet import to_parquet_bytes
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.modelkit.baseline import train_baseline, training_table
from marketsense.models.evaluation import PREDICTOR_KEYS
from marketsense.models.predictor import PredictorManifest
from marketsense.models.sentiment import SentimentModel

TRAINING_DAYS = 500
"""Trading days of feature rows per symbol (about two years)."""

TRAINING_BARS = WARMUP_BARS + TRAINING_DAYS
"""Bars fetched per symbol: the features' warm-up before the first training day, then those days.
Texts are fetched for the training days alone; the warm-up has no feature rows to score."""


def holdout_set(
    bars: dict[str, pd.DataFrame], scored: dict[str, pd.DataFrame], manifest: PredictorManifest
) -> bytes:
    """The training table's rows on and after the manifest's training cutoff (the days the
    predictor never saw), as a predictor evaluation set in Parquet."""
    table = training_table(bars, scored)
    cutoff = pd.Timestamp(manifest.training["train_end"])
    held_out = table[pd.to_datetime(table["date"]) >= cutoff]
    return to_parquet_bytes(held_out[[*PREDICTOR_KEYS, *FEATURE_COLUMNS]].reset_index(drop=True))


def training_symbols(count: int) -> list[str]:
    """Names of the simulated symbols used for training, distinct from any real ticker."""
    return [f"TRAIN{i:03d}" for i in range(count)]


def scored_history(
    symbols: list[str],
    *,
    last_day: dt.date,
    market: SimulatedMarket,
    sentiment: SentimentModel,
    console: Console,
    days: int = TRAINING_DAYS,
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """Bars (the warm-up, then `days` sessions to `last_day`) and those days' texts scored by
    `sentiment`, per symbol."""
    bars: dict[str, pd.DataFrame] = {}
    scored: dict[str, pd.DataFrame] = {}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("simulating history and scoring its texts", total=len(symbols))
        for symbol in symbols:
            bars[symbol] = market.daily_bars(symbol, as_of=last_day, days=WARMUP_BARS + days)
            texts = market.texts(symbol, as_of=last_day, days=days)
            # Screened as processing screens them: training sees the aggregates serving sees.
            scores, _ = sentiment.judged_scores(texts["text"].tolist())
            judged = ~np.isnan(scores)
            scored[symbol] = pd.DataFrame(
                {"date": texts["date"].to_numpy()[judged], "score": scores[judged]}
            )
            progress.advance(task)
    return bars, scored


def build_baseline(
    directory: Path,
    *,
    as_of: dt.date,
    symbols: int,
    market: SimulatedMarket,
    sentiment: SentimentModel,
    console: Console,
) -> PredictorManifest:
    """Train on the days before `as_of`, so a run for `as_of` is scored out of sample; write
    the holdout rows beside `directory` (`holdout_set_path`)."""
    bars, scored = scored_history(
        training_symbols(symbols),
        last_day=as_of - dt.timedelta(days=1),
        market=market,
        sentiment=sentiment,
        console=console,
    )
    with console.status("training the baseline predictor and exporting it to ONNX"):
        manifest = train_baseline(
            bars,
            directory,
            scored_texts_by_symbol=scored,
            source=f"simulated market, seed {market.seed}; texts scored by "
            f"{sentiment.manifest.name} v{sentiment.manifest.version}",
        )
    # The registry gates a predictor on an evaluation set; these rows are the first one.
    holdout_set_path(directory).write_bytes(holdout_set(bars, scored, manifest))
    return manifest
