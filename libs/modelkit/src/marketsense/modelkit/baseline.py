"""Train the baseline predictor: logistic regression on technical features, exported to ONNX."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from skl2onnx import to_onnx
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from marketsense.common.features import (
    FEATURE_COLUMNS,
    FEATURE_SCHEMA,
    TECHNICAL_COLUMNS,
    compute_feature_panel,
    next_day_up,
)
from marketsense.models.feature_reference import write_feature_reference
from marketsense.models.predictor import OnnxPredictor, PredictorManifest, write_predictor

HOLDOUT_SHARE = 0.2
"""Share of the latest dates kept out of training for evaluation."""

MAY_BE_MISSING = ("rsi_14", "volume_z_20d")
"""Technical features that are missing by definition on some days (flat prices; constant or
zero volume): those rows are kept and the feature imputed. A row missing any other technical
feature has broken bars and is left out."""


def training_table(
    bars_by_symbol: Mapping[str, pd.DataFrame],
    scored_texts_by_symbol: Mapping[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Features and next-day label for every symbol-day that has both.

    The features come from the same computation a run makes, over each whole history at once.
    """
    features = compute_feature_panel(bars_by_symbol, scored_texts_by_symbol or None)
    labels = pd.concat(
        [
            next_day_up(bars).rename("label").rename_axis("date").reset_index().assign(symbol=s)
            for s, bars in bars_by_symbol.items()
        ]
    )
    table = features.merge(labels, on=["symbol", "date"], how="left")
    required = [c for c in TECHNICAL_COLUMNS if c not in MAY_BE_MISSING]
    return table.dropna(subset=["label", *required]).reset_index(drop=True)


def _imputer() -> ColumnTransformer:
    """Missing values filled in a way the served ONNX graph repeats.

    A day without texts has NaN sentiment and has_sentiment 0: the model sees "no news" through
    the flag, and the imputed 0 keeps the NaN out of the arithmetic. A missing RSI or volume
    z-score takes the training median, a typical day, rather than 0 (an RSI of 0 would read as
    an extreme sell-off).
    """
    technical = list(range(len(TECHNICAL_COLUMNS)))
    sentiment = list(range(len(TECHNICAL_COLUMNS), len(FEATURE_COLUMNS)))
    return ColumnTransformer(
        [
            ("technical", SimpleImputer(strategy="median", keep_empty_features=True), technical),
            (
                "sentiment",
                SimpleImputer(strategy="constant", fill_value=0.0, keep_empty_features=True),
                sentiment,
            ),
        ]
    )


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

    model = make_pipeline(
        _imputer(),
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
    # Monitoring measures drift against what the model learned from: the training rows.
    directory.mkdir(parents=True, exist_ok=True)
    write_feature_reference(directory, train)
    manifest = write_predictor(
        directory, onnx_bytes=onnx_model.SerializeToString(), manifest=manifest
    )
    # The served graph must score exactly as the trained model does.
    served = OnnxPredictor(directory).predict_up(x_test)
    worst = float(np.max(np.abs(served - probs)))
    if worst > 1e-4:
        raise RuntimeError(f"ONNX export disagrees with the trained model (max diff {worst:.2e})")
    return manifest


def _iso(value: object) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)
