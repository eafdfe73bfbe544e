"""The predictors out of sample: the long-short book of a held-out year, logistic against torch.

On the simulated market (seed 7), both trainers learn from the same training table: 50 TRAIN
symbols, 500 days to the day before the held-out year, texts scored by the default sentiment
model as `marketsense.cli.training.build_baseline` scores them. Each exported graph then scores
the held-out year (252 sessions) of 50 other symbols, served as prediction serves it
(onnxruntime), and so does the perfect-knowledge score (each day's true text tone,
`SimulatedMarket.daily_tone`, which leads the next day's return) and, untrained, the day's
mean sentiment score as the sentiment model read the texts. The book of monitoring's daily
figures (top and bottom fifth, 5 basis points per unit of turnover) gives each an annualised
Sharpe ratio, and each is reported against the perfect score's.

The default sentiment model and the scored tables are kept in `.bench-cache/` (git-ignored), so
a second run trains and scores only.

    uv run python bench/predictor_models.py [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from sklearn.metrics import roc_auc_score

from marketsense.cli.bootstrap import ensure_models
from marketsense.cli.training import scored_history, training_symbols
from marketsense.common.calendar import DEFAULT_EXCHANGE, exchange_calendar
from marketsense.common.features import FEATURE_COLUMNS
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.modelkit.baseline import training_table
from marketsense.modelkit.torch_predictor import train_torch_predictor
from marketsense.modelkit.trainers import TRAINERS
from marketsense.models.predictor import OnnxPredictor, PredictorManifest
from marketsense.models.sentiment import SentimentModel
from marketsense.monitoring.figures import daily_figures
from marketsense.monitoring.returns_stats import sharpe_ratio

SEED = 7
LAST_AS_OF = dt.date(2026, 11, 20)
"""The held-out year's last prediction day."""
HELD_OUT_SESSIONS = 252
SYMBOLS = 50
CACHE = Path(".bench-cache")


def held_out_days() -> list[dt.date]:
    """The held-out year's prediction days, and the session after the last (its outcome)."""
    sessions = exchange_calendar(DEFAULT_EXCHANGE).sessions(
        dt.date(2024, 1, 2), dt.date(2027, 1, 29)
    )
    days = [d.date() for d in pd.DatetimeIndex(sessions)]
    end = days.index(LAST_AS_OF)
    return days[end - HELD_OUT_SESSIONS + 1 : end + 2]


def tables(market: SimulatedMarket, console: Console) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training table and the held-out year's table (features, label, next-day return)."""
    days = held_out_days()
    last_training_day = days[0] - dt.timedelta(days=1)
    paths = CACHE / f"predictor-train-{SEED}.parquet", CACHE / f"predictor-test-{SEED}.parquet"
    if all(p.exists() for p in paths):
        return pd.read_parquet(paths[0]), pd.read_parquet(paths[1])
    home = CACHE / "models"
    ensure_models(
        sentiment_dir=home / "sentiment",
        predictor_dir=home / "baseline-predictor",
        as_of=days[0],
        market=market,
        console=console,
    )
    sentiment = SentimentModel(home / "sentiment", quantized=True, threads=2)
    bars, scored = scored_history(
        training_symbols(SYMBOLS),
        last_day=last_training_day,
        market=market,
        sentiment=sentiment,
        console=console,
    )
    train = training_table(bars, scored)
    symbols = [f"HELD{i:03d}" for i in range(SYMBOLS)]
    bars, scored = scored_history(
        symbols,
        last_day=days[-1],
        market=market,
        sentiment=sentiment,
        console=console,
        days=len(days),
    )
    test = training_table(bars, scored)
    test = test[test["date"].isin(days[:-1])]
    returns = pd.concat(
        pd.DataFrame(
            {
                "symbol": s,
                "date": b["date"],
                "realized_return": b["close"].shift(-1) / b["close"] - 1,
            }
        )
        for s, b in bars.items()
    )
    test = test.merge(returns, on=["symbol", "date"], how="left")
    tone = pd.concat(
        market.daily_tone(s, as_of=days[-1], days=len(days))
        .rename("tone")
        .rename_axis("date")
        .reset_index()
        .assign(symbol=s)
        for s in symbols
    )
    test = test.merge(tone, on=["symbol", "date"], how="left")
    CACHE.mkdir(exist_ok=True)
    train.to_parquet(paths[0])
    test.to_parquet(paths[1])
    return train, test


def book_sharpe(test: pd.DataFrame, prob_up: np.ndarray) -> float | None:
    """Annualised Sharpe of the long-short book that ranks the held-out rows by `prob_up`."""
    days = held_out_days()
    outcome = dict(itertools.pairwise(days))
    resolved = pd.DataFrame(
        {
            "symbol": test["symbol"],
            "as_of": test["date"],
            "outcome_day": test["date"].map(outcome),
            "prob_up": prob_up,
            "realized_return": test["realized_return"],
        }
    )
    daily = daily_figures(resolved, quantile=0.2, cost_bps=5.0)
    return sharpe_ratio(daily["strategy_return"].to_numpy())


def trained(
    name: str, train: pd.DataFrame, directory: Path, seed: int
) -> tuple[PredictorManifest, float]:
    """Train one predictor into `directory`; its manifest and the CPU seconds it took."""
    source = f"simulated market, seed {SEED}"
    start = time.process_time()
    if name == "torch-mlp":
        manifest = train_torch_predictor(train, directory, name=name, source=source, seed=seed)
    else:
        manifest = TRAINERS[name](train, directory, name=name, source=source)
    return manifest, time.process_time() - start


def main() -> None:
    """Build or read the tables, train, score the held-out year, print one table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="torch seeds")
    args = parser.parse_args()
    console = Console(stderr=True)
    market = SimulatedMarket(SEED)
    train, test = tables(market, console)
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(
        f"training rows {len(train):,}, held-out rows {len(test):,} ({test['date'].nunique()} days)"
    )
    perfect = book_sharpe(test, 1 / (1 + np.exp(-4 * test["tone"].to_numpy())))
    assert perfect is not None
    print(
        "| model | seed | train CPU s | holdout AUC (training table) | held-out year AUC "
        "| book Sharpe | x perfect |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(f"| perfect knowledge | | | | | {perfect:.1f} | 1.00 |")
    # No training at all: the day's mean sentiment score (0 without texts) as the ranking.
    mean_score = test["sentiment_mean"].fillna(0.0).to_numpy()
    alone = book_sharpe(test, 1 / (1 + np.exp(-4 * mean_score)))
    assert alone is not None
    print(f"| mean sentiment score alone | | | | | {alone:.1f} | {alone / perfect:.2f} |")
    runs = [("logistic", 0)] + [("torch-mlp", seed) for seed in args.seeds]
    with tempfile.TemporaryDirectory() as scratch:
        for name, seed in runs:
            folder = Path(scratch) / f"{name}-{seed}"
            manifest, cpu = trained(name, train, folder, seed)
            prob_up = OnnxPredictor(folder).predict_up(
                test[list(FEATURE_COLUMNS)].to_numpy(np.float32)
            )
            sharpe = book_sharpe(test, prob_up)
            auc = roc_auc_score(test["label"].astype(int), prob_up)
            shown = "n/a" if sharpe is None else f"{sharpe:.1f}"
            ratio = "n/a" if sharpe is None else f"{sharpe / perfect:.2f}"
            print(
                f"| {name} | {seed if name == 'torch-mlp' else ''} | {cpu:.1f} | "
                f"{manifest.metrics['holdout_auc']:.3f} | {auc:.3f} | {shown} | {ratio} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
