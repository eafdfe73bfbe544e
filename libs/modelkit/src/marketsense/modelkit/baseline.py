"""Train the baseline predictor: logistic regression on the feature row, exported to ONNX; and
the held-out split, metrics and checked bundle every predictor trainer shares."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
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
from marketsense.modelkit.training_errors import holdout_cutoff
from marketsense.models.feature_reference import write_feature_reference
from marketsense.models.predictor import OnnxPredictor, PredictorManifest, write_predictor

HOLDOUT_SHARE = 0.2
"""Share of the latest dates kept out of training for evaluation."""

TRAINER = "logistic"
"""The name the manifest's `training["trainer"]` records."""

LOGISTIC_PARITY = 1e-4
"""Largest difference allowed between the served graph's and scikit-learn's probabilities."""

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


@dataclass(frozen=True)
class HoldoutSplit:
    """A training table split by date: the latest `HOLDOUT_SHARE` of dates held out."""

    train: pd.DataFrame
    test: pd.DataFrame
    first_date: object
    cutoff: object
    last_date: object

    def x_train(self) -> np.ndarray:
        """The training rows' features, float32, in FEATURE_COLUMNS order."""
        return self.train[list(FEATURE_COLUMNS)].to_numpy(np.float32, copy=True)

    def x_test(self) -> np.ndarray:
        """The held-out rows' features, float32, in FEATURE_COLUMNS order."""
        return self.test[list(FEATURE_COLUMNS)].to_numpy(np.float32, copy=True)

    def window(self, source: str) -> str:
        """The manifest's evaluation window: what the metrics were measured on."""
        return f"{source} {_iso(self.cutoff)}..{_iso(self.last_date)}"

    def lineage(self, source: str, training: Mapping[str, str] | None) -> dict[str, str]:
        """The manifest's training entries, `training` merged over the split's own."""
        return {
            "source": source,
            "symbols": str(self.train["symbol"].nunique()),
            "train_start": _iso(self.first_date),
            "train_end": _iso(self.cutoff),
            "holdout_end": _iso(self.last_date),
            **(training or {}),
        }


def split_holdout(table: pd.DataFrame) -> HoldoutSplit:
    """Split by date; InsufficientTrainingData when the table is too small or one-class."""
    cutoff = holdout_cutoff(table, HOLDOUT_SHARE)
    dates = np.sort(table["date"].unique())
    return HoldoutSplit(
        train=table[table["date"] < cutoff],
        test=table[table["date"] >= cutoff],
        first_date=dates[0],
        cutoff=cutoff,
        last_date=dates[-1],
    )


def holdout_metrics(labels: pd.Series, probs: np.ndarray) -> dict[str, float]:
    """The manifest's metrics of up-probabilities on the held-out rows."""
    return {
        "holdout_accuracy": float(accuracy_score(labels, probs >= 0.5)),
        "holdout_log_loss": float(log_loss(labels, probs, labels=[0, 1])),
        "holdout_auc": float(roc_auc_score(labels, probs)),
        "holdout_rows": float(len(labels)),
        "base_rate_up": float(labels.mean()),
    }


def write_checked_bundle(
    directory: Path,
    *,
    onnx_bytes: bytes,
    manifest: PredictorManifest,
    split: HoldoutSplit,
    probs: np.ndarray,
    tolerance: float,
) -> PredictorManifest:
    """Write the bundle, then check the served graph scores the held-out rows as `probs`."""
    # Monitoring measures drift against what the model learned from: the training rows.
    directory.mkdir(parents=True, exist_ok=True)
    write_feature_reference(directory, split.train)
    written = write_predictor(directory, onnx_bytes=onnx_bytes, manifest=manifest)
    served = OnnxPredictor(directory).predict_up(split.x_test())
    worst = float(np.max(np.abs(served - probs)))
    if not worst <= tolerance:  # a NaN difference fails too
        raise RuntimeError(
            f"ONNX export disagrees with the trained model (max diff {worst:.2e}, "
            f"tolerance {tolerance:.0e})"
        )
    return written


def train_logistic(
    table: pd.DataFrame,
    directory: Path,
    *,
    name: str,
    version: str = "1",
    source: str,
    training: Mapping[str, str] | None = None,
) -> PredictorManifest:
    """Train a logistic regression on all but the latest dates of a training table (as
    `training_table` returns), evaluate on those, export and verify the ONNX graph."""
    split = split_holdout(table)
    x_train = split.x_train()
    model = make_pipeline(
        _imputer(),
        StandardScaler(),
        LogisticRegression(max_iter=1000),
    )
    model.fit(x_train, split.train["label"].astype(int))
    probs = model.predict_proba(split.x_test())[:, 1]
    onnx_model = to_onnx(model, x_train[:1], options={"zipmap": False}, target_opset=17)
    manifest = PredictorManifest(
        name=name,
        version=version,
        feature_schema=FEATURE_SCHEMA,
        features=list(FEATURE_COLUMNS),
        input_name=onnx_model.graph.input[0].name,
        probability_output="probabilities",
        metrics=holdout_metrics(split.test["label"].astype(int), probs),
        evaluation_window=split.window(source),
        training=split.lineage(source, {"trainer": TRAINER, **(training or {})}),
    )
    return write_checked_bundle(
        directory,
        onnx_bytes=onnx_model.SerializeToString(),
        manifest=manifest,
        split=split,
        probs=probs,
        tolerance=LOGISTIC_PARITY,
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
    return train_logistic(
        training_table(bars_by_symbol, scored_texts_by_symbol),
        directory,
        name=name,
        version=version,
        source=source,
        training={"symbols": str(len(bars_by_symbol))},
    )


def _iso(value: object) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)
