"""Build the baseline predictor from the simulated market."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from marketsense.ingestion.source import SimulatedMarket
from marketsense.prediction.model import PredictorManifest
from marketsense.prediction.training import train_baseline

DEFAULT_TRAINING_SYMBOLS = 40
"""Simulated symbols the baseline learns from."""

TRAINING_DAYS = 750
"""Trading days of history per symbol (about three years)."""


def training_symbols(count: int) -> list[str]:
    """Names of the simulated symbols used for training, distinct from any real ticker."""
    return [f"TRAIN{i:03d}" for i in range(count)]


def build_baseline(
    directory: Path, *, as_of: dt.date, symbols: int, seed: int, console: Console
) -> PredictorManifest:
    """Train on the days before `as_of`, so a run for `as_of` is scored out of sample."""
    market = SimulatedMarket(seed=seed)
    last_training_day = as_of - dt.timedelta(days=1)
    bars = {}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("simulating training history", total=symbols)
        for symbol in training_symbols(symbols):
            bars[symbol] = market.daily_bars(symbol, as_of=last_training_day, days=TRAINING_DAYS)
            progress.advance(task)
    with console.status("training the baseline predictor and exporting it to ONNX"):
        return train_baseline(bars, directory, source=f"simulated market, seed {seed}")
