"""Scoring without storage: signals from probabilities, model inputs from supplied rows."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from marketsense.common.features import FEATURE_SCHEMA
from marketsense.models.predictor import PredictorManifest
from marketsense.prediction.schemas import PredictRow
from marketsense.prediction.scoring import (
    FeatureMismatch,
    feature_matrix,
    online_predictions,
    scorable,
    signal_for,
)

DAY = dt.date(2026, 11, 20)


@pytest.mark.parametrize(
    ("prob", "signal"), [(0.56, "up"), (0.55, "up"), (0.5, "flat"), (0.45, "down"), (0.2, "down")]
)
def test_signal_needs_the_probability_past_the_threshold(prob: float, signal: str) -> None:
    assert signal_for(prob, threshold=0.05) == signal


MANIFEST = PredictorManifest(
    name="baseline",
    version="3",
    feature_schema=FEATURE_SCHEMA,
    features=["rsi_14", "ret_1d", "sentiment_mean"],
    input_name="X",
    probability_output="probabilities",
    horizon_days=2,
)
"""A predictor reading three features, in that (not alphabetical) order."""


def row(symbol: str = "AAA", **features: float | None) -> PredictRow:
    """A supplied row with `features`."""
    return PredictRow(symbol=symbol, as_of=DAY, features=features)


def test_rows_become_the_model_input_in_the_manifests_column_order() -> None:
    rows = [
        row(sentiment_mean=0.5, ret_1d=0.01, rsi_14=55.0),
        row("BBB", rsi_14=40.0, sentiment_mean=None, ret_1d=-0.02),
    ]

    matrix = feature_matrix(MANIFEST, rows)

    assert matrix.dtype == np.float32
    np.testing.assert_array_equal(
        matrix, np.array([[55.0, 0.01, 0.5], [40.0, -0.02, np.nan]], np.float32)
    )


def test_no_rows_give_an_empty_input_of_the_models_width() -> None:
    assert feature_matrix(MANIFEST, []).shape == (0, 3)


def test_every_missing_or_unknown_feature_is_named_with_its_row() -> None:
    rows = [
        row(ret_1d=0.1, rsi_14=50.0, sentiment_mean=0.0),
        row(ret_1d=0.1, sentiment_mean=0.0, mood=1.0),
        row(),
    ]

    with pytest.raises(FeatureMismatch) as caught:
        feature_matrix(MANIFEST, rows)

    problems = {(p["type"], p["loc"]): p for p in caught.value.problems}
    assert set(problems) == {
        ("missing", ("body", "rows", 1, "features", "rsi_14")),
        ("extra_forbidden", ("body", "rows", 1, "features", "mood")),
        ("missing", ("body", "rows", 2, "features", "ret_1d")),
        ("missing", ("body", "rows", 2, "features", "rsi_14")),
        ("missing", ("body", "rows", 2, "features", "sentiment_mean")),
    }
    unknown = problems[("extra_forbidden", ("body", "rows", 1, "features", "mood"))]
    assert unknown["input"] == 1.0
    assert "baseline version 3 reads rsi_14, ret_1d, sentiment_mean" in unknown["msg"]
    assert str(caught.value) == "5 feature problem(s)"


def test_online_predictions_answer_each_row_in_order_without_a_run() -> None:
    rows = [row("AAA"), row("BBB"), row("CCC")]

    response = online_predictions(
        MANIFEST, rows, np.array([0.9, 0.5, 0.1], np.float32), threshold=0.05
    )

    assert (response.model_name, response.model_version, response.horizon_days) == (
        "baseline",
        "3",
        2,
    )
    assert [(p.symbol, p.signal) for p in response.predictions] == [
        ("AAA", "up"),
        ("BBB", "flat"),
        ("CCC", "down"),
    ]
    assert [p.prob_up for p in response.predictions] == pytest.approx([0.9, 0.5, 0.1])
    assert {(p.run_id, p.as_of, p.horizon_days) for p in response.predictions} == {(None, DAY, 2)}


def test_online_predictions_need_one_probability_per_row() -> None:
    with pytest.raises(ValueError, match="shorter"):
        online_predictions(MANIFEST, [row("AAA"), row("BBB")], np.array([0.4]), threshold=0.05)


def test_probabilities_that_are_not_numbers_from_0_to_1_are_named_by_row() -> None:
    with pytest.raises(FeatureMismatch) as refused:
        scorable(np.array([0.2, np.nan, 1.0, np.inf, -0.1], dtype=np.float32))

    assert [p["loc"] for p in refused.value.problems] == [
        ("body", "rows", i, "features") for i in (1, 3, 4)
    ]
    scorable(np.array([0.0, 0.5, 1.0], dtype=np.float32))
