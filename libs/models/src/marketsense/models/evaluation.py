"""Evaluation sets the registry scores versions on, and the metrics it measures on them.

A sentiment set is a CSV of `text,label`; a predictor set is a Parquet table of feature rows and
the realised next-day outcome. Both are bounded and checked before any model sees them.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from marketsense.common.features import FEATURE_COLUMNS
from marketsense.common.parquet import from_parquet_bytes
from marketsense.models.predictor import OnnxPredictor
from marketsense.models.sentiment import SentimentModel

HELDOUT_SET_PATH = Path(__file__).parent / "data" / "sentiment_heldout.csv"
"""The project's 300 held-out labelled texts: the sentiment set a registry starts with."""
SENTIMENT_LABELS = ("negative", "neutral", "positive")
"""Labels a sentiment set may use."""
MAX_SET_BYTES = 64 << 20
"""Largest evaluation set accepted, before it is parsed."""
MAX_SET_ROWS = 200_000
"""Most rows a set may hold: scoring time grows with them."""
MIN_SET_ROWS = 20
"""Fewest rows a set may hold: fewer cannot tell two models apart."""
MAX_TEXT_CHARS = 2_000
"""Longest text in a sentiment set."""
PREDICTOR_KEYS = ("symbol", "date", "label")
"""Columns a predictor set has besides the feature columns."""


class InvalidEvaluationSet(ValueError):
    """A set that cannot be used, with what to fix."""


@dataclass(frozen=True)
class SentimentSet:
    """Labelled texts."""

    texts: list[str]
    labels: list[str]


@dataclass(frozen=True)
class PredictorSet:
    """Feature rows (`FEATURE_COLUMNS`, NaN where a feature is undefined) and 0/1 outcomes."""

    frame: pd.DataFrame


def read_sentiment_set(data: bytes) -> SentimentSet:
    """A `text,label` CSV as a set; InvalidEvaluationSet says what is wrong with it."""
    _check_size(data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidEvaluationSet(f"the set is not UTF-8: {error}") from error
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or not {"text", "label"} <= set(reader.fieldnames):
        raise InvalidEvaluationSet(
            f"a sentiment set is a CSV with the header text,label (got {reader.fieldnames})"
        )
    texts: list[str] = []
    labels: list[str] = []
    for number, row in enumerate(reader, start=2):
        if len(texts) >= MAX_SET_ROWS:
            raise InvalidEvaluationSet(f"the set has more than {MAX_SET_ROWS} rows")
        body, label = (row.get("text") or "").strip(), (row.get("label") or "").strip()
        if not body or len(body) > MAX_TEXT_CHARS:
            raise InvalidEvaluationSet(
                f"line {number}: text must be 1 to {MAX_TEXT_CHARS} characters"
            )
        if label not in SENTIMENT_LABELS:
            raise InvalidEvaluationSet(
                f"line {number}: label {label[:40]!r} is not one of {', '.join(SENTIMENT_LABELS)}"
            )
        texts.append(body)
        labels.append(label)
    _check_rows(len(texts))
    if not {"negative", "positive"} <= set(labels):
        raise InvalidEvaluationSet("a sentiment set needs both negative and positive texts")
    return SentimentSet(texts=texts, labels=labels)


def read_predictor_set(data: bytes) -> PredictorSet:
    """A Parquet table of feature rows and outcomes as a set; InvalidEvaluationSet if unusable."""
    _check_size(data)
    try:
        frame = from_parquet_bytes(data)
    except Exception as error:  # pyarrow raises several unrelated types for unreadable files
        raise InvalidEvaluationSet(f"the set is not a readable Parquet file: {error}") from error
    missing = [c for c in (*PREDICTOR_KEYS, *FEATURE_COLUMNS) if c not in frame.columns]
    if missing:
        raise InvalidEvaluationSet(f"the predictor set lacks the columns {missing}")
    _check_rows(len(frame))
    features = frame[list(FEATURE_COLUMNS)]
    if not all(pd.api.types.is_numeric_dtype(features[c]) for c in FEATURE_COLUMNS):
        raise InvalidEvaluationSet("every feature column must be numeric")
    values = features.to_numpy(np.float64)
    if np.isinf(values).any():
        raise InvalidEvaluationSet("feature values must be finite numbers or missing (NaN)")
    labels = pd.to_numeric(frame["label"], errors="coerce")
    if not labels.isin([0, 1]).all():
        raise InvalidEvaluationSet("label must be 0 (down) or 1 (up) on every row")
    if labels.nunique() < 2:
        raise InvalidEvaluationSet("the set needs both up (1) and down (0) outcomes")
    table = frame[list(PREDICTOR_KEYS)].assign(label=labels.astype(int))
    return PredictorSet(frame=pd.concat([table, features.astype(np.float64)], axis=1))


def sentiment_metrics(model: SentimentModel, data: SentimentSet) -> dict[str, float]:
    """Macro-F1 and accuracy of the model's top label, over the labels the set uses."""
    probabilities = model.probabilities(data.texts)
    predicted = np.asarray(model.manifest.labels)[probabilities.argmax(axis=1)]
    truth = np.asarray(data.labels)
    f1s = [_f1(truth, predicted, label) for label in sorted(set(data.labels))]
    return {
        "heldout_macro_f1": float(np.mean(f1s)),
        "heldout_accuracy": float(np.mean(truth == predicted)),
        "heldout_rows": float(len(truth)),
    }


def predictor_metrics(predictor: OnnxPredictor, data: PredictorSet) -> dict[str, float]:
    """AUC, accuracy and log loss of the predictor's up probability on the set's outcomes."""
    rows = data.frame[predictor.manifest.features].to_numpy(np.float32)
    up = predictor.predict_up(rows).astype(np.float64)
    if not np.all(np.isfinite(up)):
        raise ValueError("the predictor gives non-finite probabilities on the evaluation set")
    truth = data.frame["label"].to_numpy(np.int64)
    clipped = np.clip(up, 1e-7, 1 - 1e-7)
    log_loss = -np.mean(truth * np.log(clipped) + (1 - truth) * np.log(1 - clipped))
    return {
        "holdout_auc": _auc(truth, up),
        "holdout_accuracy": float(np.mean((up >= 0.5) == (truth == 1))),
        "holdout_log_loss": float(log_loss),
        "holdout_rows": float(len(truth)),
    }


def _f1(truth: np.ndarray, predicted: np.ndarray, label: str) -> float:
    """F1 of one label; 0 when the label is never predicted or never true."""
    hits = float(np.sum((predicted == label) & (truth == label)))
    guessed, actual = float(np.sum(predicted == label)), float(np.sum(truth == label))
    return 0.0 if hits == 0 else 2 * hits / (guessed + actual)


def _auc(truth: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum statistic; ties count half."""
    ranks = rankdata(score)
    positives = truth == 1
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    value = (ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return float(value) if math.isfinite(value) else 0.5


def _check_size(data: bytes) -> None:
    if len(data) > MAX_SET_BYTES:
        raise InvalidEvaluationSet(f"the set is over {MAX_SET_BYTES >> 20} MiB")


def _check_rows(count: int) -> None:
    if count < MIN_SET_ROWS:
        raise InvalidEvaluationSet(f"the set has {count} rows; it needs at least {MIN_SET_ROWS}")
    if count > MAX_SET_ROWS:
        raise InvalidEvaluationSet(f"the set has more than {MAX_SET_ROWS} rows")
