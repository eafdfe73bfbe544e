"""Build the models the embedded default needs, once, under its home folder."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from rich.console import Console

from marketsense.cli.defaults import DEFAULT_TRAINING_SYMBOLS
from marketsense.cli.training import build_baseline
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.models.files import MANIFEST_FILE, MODEL_FILE
from marketsense.models.sentiment import SentimentModel


def ensure_models(
    *,
    sentiment_dir: Path,
    predictor_dir: Path,
    as_of: dt.date,
    market: SimulatedMarket,
    console: Console,
) -> None:
    """Build the default sentiment model and the baseline predictor where they are missing."""
    if not (sentiment_dir / MANIFEST_FILE).exists():
        # torch is needed only here, to build; serving uses onnxruntime alone.
        from marketsense.modelkit.sentiment_build import build_default_sentiment_model

        with console.status("building the sentiment model from all-MiniLM-L6-v2 (first run only)"):
            manifest = build_default_sentiment_model(sentiment_dir)
        console.print(
            f"built {manifest.name} v{manifest.version}: held-out accuracy "
            f"{manifest.metrics['heldout_accuracy']:.3f}, macro-F1 "
            f"{manifest.metrics['heldout_macro_f1']:.3f}"
        )
    if not (predictor_dir / MODEL_FILE).exists():
        sentiment = SentimentModel(sentiment_dir, quantized=True, threads=2)
        predictor = build_baseline(
            predictor_dir,
            as_of=as_of,
            symbols=DEFAULT_TRAINING_SYMBOLS,
            market=market,
            sentiment=sentiment,
            console=console,
        )
        console.print(
            f"trained {predictor.name} v{predictor.version}: held-out accuracy "
            f"{predictor.metrics['holdout_accuracy']:.3f}, "
            f"AUC {predictor.metrics['holdout_auc']:.3f}"
        )
