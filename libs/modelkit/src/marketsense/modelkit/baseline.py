"""Train the baseline predictor: logistic regression on technical features, exported to ONNX."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from skl2onnx import to_onnx
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from marketsense.common.features import (
    FEATURE_COLUMNS,
    FEATURE_SCHEMA,
    TECHNICAL_COLUMNS,
    compute_features,
    next_day_up,
)
from marketsense.models.predictor import OnnxPredictor, PredictorManifest, write_predictor

HOLDOUT_SHARE = 0.2
"""Share of the latest dates kept out of training for evaluation."""


def training_table(
    bars_by_symbol: Mapping[str, pd.DataFrame],
    scored_texts_by_symbol: Mapping[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Features and next-day label for every symbol-day that has both."""
    frames = []
    for symbol, bars in bars_by_symbol.items():
        scored = (scored_texts_by_symbol or {}).get(symbol)
        features = compute_features(bars, scored)
        features["label"] = next_day_up(bars).reindex(features.index)
        features["symbol"] = symbol
        frames.append(features.dropna(subset=["label"]))
    table = pd.concat(frames).rename_axis("date").reset_index()
    # Sentiment may be missing on a day; the technical features may not.
    return table.dropna(subset=list(TECHNICAL_COLUMNS))


def train_baseline(
    bars_by_symbol: Mapping[str, pd.DataFrame],
    directory: Path,
    *,
    scored_texts_by_symbol: Mapping[str, pd.DataFrame] | None = None,
    name: str = "baseline-predictor",
    version: str = "1",
    source: str = "simulated",
) -> PredictorManifest:
    """Train on all but the latest dates, evaluate on those, export and verify the ONNX graph."""
    table = training_table(bars_by_symbol, scored_texts_by_symbol)
    dates = np.sort(table["date"].unique())
    cutoff = dates[int(len(dates) * (1 - HOLDOUT_SHARE))]
    train, test = table[table["date"] < cutoff], table[table["date"] >= cutoff]
    x_train = train[list(FEATURE_COLUMNS)].to_numpy(np.float32)
    x_test = test[list(FEATURE_COLUMNS)].to_numpy(np.float32)
    y_train, y_test = train["label"].astype(int), test["label"].astype(int)

    # A day without texts has NaN sentiment and has_sentiment 0: the model sees "no news" through
    # the flag, and the imputed 0 keeps the NaN out of the arithmetic.
    model = make_pipeline(
        SimpleImputer(strategy="constant", fill_value=0.0, keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(max_iter=1000),
    )
    model.fit(x_train, y_train)
    probs = model.predict_proba(x_test)[:, 1]
    metrics = {
        "holdout_accuracy": float(accuracy_score(y_test, probs >= 0.5)),
        "holdout_log_loss": float(log_loss(y_test, probs)),
        "holdout_auc": float(roc_auc_score(y_test, probs)),
        "holdout_rows": float(len(test)),
        "base_rate_up": float(y_test.mean()),
    }
    onnx_model = to_onnx(model, x_train[:1], options={"zipmap": False}, target_opset=17)
    manifest = PredictorManifest(
        name=name,
        version=version,
        feature_schema=FEATURE_SCHEMA,
        features=list(FEATURE_COLUMNS),
        input_name=onnx_model.graph.input[0].name,
        probability_output="probabilities",
        metrics=metrics,
        evaluation_window=f"{source} {_iso(cutoff)}..{_iso(dates[-1])}",
        training={
            "source": source,
            "symbols": str(len(bars_by_symbol)),
            "train_start": _iso(dates[0]),
            "train_end": _iso(cutoff),
            "holdout_end": _iso(dates[-1]),
        },
    )
    write_predictor(directory, onnx_bytes=onnx_model.SerializeToString(), manifest=manifest)
    # The served graph must score exactly as the trained model does.
    served = OnnxPredictor(directory).predict_up(x_test)
    worst = float(np.max(np.abs(served - probs)))
    if worst > 1e-4:
        raise RuntimeError(f"ONNX export disagrees with the trained model (max diff {worst:.2e})")
    return manifest


def _iso(value: object) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)
