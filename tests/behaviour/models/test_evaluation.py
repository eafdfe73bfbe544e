"""Evaluation sets: read and bounded before any model sees them, and the metrics the registry
measures on them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, log_loss, roc_auc_score

from marketsense.common.features import FEATURE_COLUMNS
from marketsense.common.parquet import to_parquet_bytes
from marketsense.models.evaluation import (
    HELDOUT_SET_PATH,
    MIN_SET_ROWS,
    InvalidEvaluationSet,
    PredictorSet,
    SentimentSet,
    predictor_metrics,
    read_predictor_set,
    read_sentiment_set,
    sentiment_metrics,
)


def csv(*rows: str, header: str = "text,label") -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def labelled(count: int) -> list[str]:
    return [f"text number {i},{('positive', 'negative')[i % 2]}" for i in range(count)]


def outcomes(rows: int = 40, columns: dict[str, Any] | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(rows, len(FEATURE_COLUMNS))), columns=FEATURE_COLUMNS)
    frame.insert(0, "label", [i % 2 for i in range(rows)])
    frame.insert(0, "date", "2026-09-01")
    frame.insert(0, "symbol", "AAA")
    for name, value in (columns or {}).items():
        frame[name] = value
    return frame


def test_the_shipped_held_out_texts_are_a_valid_set_of_three_hundred() -> None:
    texts = read_sentiment_set(HELDOUT_SET_PATH.read_bytes())

    assert len(texts.texts) == 300
    assert set(texts.labels) == {"negative", "neutral", "positive"}


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (csv(*labelled(20), header="sentence,label"), "header text,label"),
        (csv(*labelled(20), "fine text,bullish"), "line 22: label 'bullish'"),
        (csv(*labelled(20), ",positive"), "line 22: text must be 1 to"),
        (csv(*labelled(MIN_SET_ROWS - 1)), f"it needs at least {MIN_SET_ROWS}"),
        (csv(*[f"t{i},positive" for i in range(20)]), "both negative and positive"),
        (b"text,label\n\xff\xfe,positive\n", "not UTF-8"),
    ],
)
def test_an_unusable_sentiment_set_is_refused_saying_why(data: bytes, problem: str) -> None:
    with pytest.raises(InvalidEvaluationSet) as refused:
        read_sentiment_set(data)

    assert problem in str(refused.value)


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        (outcomes().drop(columns=["symbol", FEATURE_COLUMNS[0]]), "lacks the columns"),
        (outcomes(columns={"label": 2}), "label must be 0 (down) or 1 (up)"),
        (outcomes(columns={"label": 1}), "both up (1) and down (0)"),
        (outcomes(columns={FEATURE_COLUMNS[0]: np.inf}), "finite numbers or missing"),
        (outcomes(rows=5), "it needs at least"),
    ],
)
def test_an_unusable_predictor_set_is_refused_saying_why(frame: pd.DataFrame, problem: str) -> None:
    with pytest.raises(InvalidEvaluationSet) as refused:
        read_predictor_set(to_parquet_bytes(frame))

    assert problem in str(refused.value)


def test_a_predictor_set_keeps_missing_features_and_reads_labels_as_integers() -> None:
    frame = outcomes(columns={FEATURE_COLUMNS[1]: np.nan})

    read = read_predictor_set(to_parquet_bytes(frame))

    assert read.frame["label"].tolist() == [i % 2 for i in range(40)]
    assert read.frame[FEATURE_COLUMNS[1]].isna().all()
    with pytest.raises(InvalidEvaluationSet, match="not a readable Parquet"):
        read_predictor_set(b"PAR1 but not really")


@dataclass
class _Manifest:
    labels: list[str]
    features: list[str]


class FixedScores:
    """Stands in for a model: returns the probabilities it was given."""

    def __init__(self, labels: list[str], scores: np.ndarray):
        self.manifest = _Manifest(labels=labels, features=list(FEATURE_COLUMNS))
        self.scores = scores

    def probabilities(self, texts: list[str]) -> np.ndarray:
        assert len(texts) == len(self.scores)
        return self.scores

    def predict_up(self, rows: np.ndarray) -> np.ndarray:
        assert rows.shape == (len(self.scores), len(FEATURE_COLUMNS))
        return self.scores


def test_sentiment_metrics_score_the_top_label_in_the_models_own_label_order() -> None:
    rng = np.random.default_rng(1)
    truth = list(rng.choice(["negative", "neutral", "positive"], size=60))
    # The model lists its labels in its own order; the top column must map through it.
    labels = ["positive", "negative", "neutral"]
    scores = rng.dirichlet(np.ones(3), size=60).astype(np.float32)
    predicted = [labels[i] for i in scores.argmax(axis=1)]
    model: Any = FixedScores(labels, scores)

    metrics = sentiment_metrics(model, SentimentSet(texts=["x"] * 60, labels=truth))

    assert metrics["heldout_macro_f1"] == pytest.approx(f1_score(truth, predicted, average="macro"))
    assert metrics["heldout_accuracy"] == pytest.approx(np.mean(np.array(truth) == predicted))
    assert metrics["heldout_rows"] == 60


def test_predictor_metrics_match_the_textbook_definitions_ties_included() -> None:
    frame = outcomes(rows=200)
    rng = np.random.default_rng(2)
    up = np.round(rng.uniform(size=200), 1)  # rounded: many ties
    model: Any = FixedScores(["down", "up"], up)
    broken: Any = FixedScores(["down", "up"], up * np.nan)

    metrics = predictor_metrics(model, PredictorSet(frame=frame))

    truth = frame["label"].to_numpy()
    assert metrics["holdout_auc"] == pytest.approx(roc_auc_score(truth, up))
    assert metrics["holdout_log_loss"] == pytest.approx(
        log_loss(truth, np.clip(up, 1e-7, 1 - 1e-7))
    )
    assert metrics["holdout_accuracy"] == pytest.approx(np.mean((up >= 0.5) == (truth == 1)))
    with pytest.raises(ValueError, match="non-finite"):
        predictor_metrics(broken, PredictorSet(frame=frame))
