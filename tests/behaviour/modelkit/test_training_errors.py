"""The training table's checks before any training: enough rows, dates and both label classes."""

from __future__ import annotations

import pandas as pd
import pytest

from marketsense.modelkit.training_errors import (
    MIN_TRAINING_ROWS,
    InsufficientTrainingData,
    holdout_cutoff,
)
from tests.predictor_support import planted_table


def test_the_cutoff_holds_out_the_latest_fifth_of_the_dates() -> None:
    table = planted_table(days=60, symbols=20)

    cutoff = holdout_cutoff(table, 0.2)

    dates = sorted(table["date"].unique())
    assert cutoff == dates[48]
    assert (table["date"] >= cutoff).sum() == 12 * 20


@pytest.mark.parametrize(
    ("table", "reason"),
    [
        (
            planted_table(days=29, symbols=10),
            f"the training table has 290 rows; a predictor needs at least {MIN_TRAINING_ROWS}",
        ),
        (
            planted_table(days=4, symbols=80),
            "the training table spans 4 dates, 1 of them held out; the holdout needs at least 2",
        ),
        (
            planted_table(days=60, symbols=20).assign(label=1),
            "every label in the training table is 1; a predictor needs both up and down days",
        ),
    ],
    ids=["too-few-rows", "too-few-held-out-dates", "one-class"],
)
def test_a_table_that_cannot_be_trained_and_judged_is_refused_with_the_reason(
    table: pd.DataFrame, reason: str
) -> None:
    with pytest.raises(InsufficientTrainingData) as refused:
        holdout_cutoff(table, 0.2)

    assert str(refused.value) == reason
    assert isinstance(refused.value, ValueError)


def test_a_holdout_of_one_class_is_refused_as_its_metrics_would_be_undefined() -> None:
    table = planted_table(days=60, symbols=20)
    late = table["date"] >= sorted(table["date"].unique())[48]
    table.loc[late, "label"] = 0

    with pytest.raises(InsufficientTrainingData, match="the held-out days have one label class"):
        holdout_cutoff(table, 0.2)
