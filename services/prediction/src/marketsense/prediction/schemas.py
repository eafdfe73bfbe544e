"""Prediction API models."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    SkipValidation,
    StrictFloat,
    TypeAdapter,
)

from marketsense.common.api_models import IsoDay, Symbol

FLOAT32_MAX = float(np.finfo(np.float32).max)
"""Largest finite float32: the model reads features as float32, where a larger value is
infinite and its probability not a number."""

MAX_FEATURES = 256
"""Most feature names one row may carry: far more than any model reads, counted before each
value is checked."""

_PREDICTION_EXAMPLE: dict[str, JsonValue] = {
    "symbol": "AAPL",
    "as_of": "2026-11-25",
    "horizon_days": 1,
    "prob_up": 0.57,
    "signal": "up",
    "model_name": "baseline-predictor",
    "model_version": "3",
    "run_id": "6f1c1d2e-8a1b-4c55-9a43-2b1f0e7c9d10",
}

_FEATURES_EXAMPLE: dict[str, JsonValue] = {
    "ret_1d": 0.004,
    "ret_5d": 0.012,
    "ret_20d": -0.021,
    "volatility_20d": 0.017,
    "rsi_14": 55.2,
    "macd": 0.003,
    "macd_signal": 0.002,
    "volume_z_20d": 0.4,
    "gap_overnight": 0.001,
    "sentiment_mean": 0.35,
    "sentiment_count": 2.0,
    "sentiment_pos_share": 0.5,
    "sentiment_neg_share": 0.0,
    "sentiment_strongest": 0.71,
    "has_sentiment": 1.0,
}


class PredictionRead(BaseModel):
    """One prediction: which way a stock is expected to move, and which model said so."""

    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [_PREDICTION_EXAMPLE]}
    )

    symbol: str
    """Stock symbol."""
    as_of: dt.date
    """Trading day whose data the prediction used."""
    horizon_days: int
    """Trading days ahead the prediction is for."""
    prob_up: float = Field(ge=0, le=1)
    """Probability that the close `horizon_days` ahead is above the close on `as_of`."""
    signal: str
    """`up`, `down` or `flat` (too close to call)."""
    model_name: str
    """Predictor that made it."""
    model_version: str
    """Version of that predictor."""
    run_id: str | None
    """Run that produced it; null for online scoring of supplied features."""


class PredictionPage(BaseModel):
    """One page of stored predictions, oldest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [_PREDICTION_EXAMPLE], "next_cursor": "aWQ6MTI4"}]
        }
    )

    items: list[PredictionRead]
    """Predictions on this page, in the order they were stored."""
    next_cursor: str | None
    """Pass as `cursor` to get the next page; null on the last page."""


FeatureValue = Annotated[StrictFloat, Field(allow_inf_nan=False, ge=-FLOAT32_MAX, le=FLOAT32_MAX)]
"""A number within float32's finite range, as the model reads it; JSON strings and booleans
are refused rather than guessed at."""


class PredictRow(BaseModel):
    """One stock-day's features to score."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"symbol": "AAPL", "as_of": "2026-11-25", "features": _FEATURES_EXAMPLE}]
        },
    )

    symbol: Symbol
    """Stock symbol the features describe, read in upper case."""
    as_of: IsoDay
    """Trading day the features describe (1970-01-02 to 2099-12-31)."""
    features: dict[str, FeatureValue | None] = Field(max_length=MAX_FEATURES)
    """Every feature the served model reads (its manifest's `features`), by column name; null
    for a value that is missing (a day without texts has null sentiment columns and
    `has_sentiment` 0). Unknown names are refused."""


class PredictRequest(BaseModel):
    """Feature rows to score with the served model."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"rows": [{"symbol": "AAPL", "as_of": "2026-11-25", "features": _FEATURES_EXAMPLE}]}
            ]
        },
    )

    # The rows are checked by the route once their count is within the service's limit:
    # checking each of a far longer list first is the work the limit prevents.
    rows: list[SkipValidation[PredictRow]] = Field(min_length=1)
    """The rows, at most the service's `predict_max_rows` (1,000 unless configured)."""


PREDICT_ROWS: TypeAdapter[list[PredictRow]] = TypeAdapter(list[PredictRow])
"""Validates the rows of a `PredictRequest` one by one."""


class PredictResponse(BaseModel):
    """Scores of the supplied rows, in their order, by one model version."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model_name": "baseline-predictor",
                    "model_version": "3",
                    "horizon_days": 1,
                    "predictions": [_PREDICTION_EXAMPLE | {"run_id": None}],
                }
            ]
        }
    )

    model_name: str
    """Predictor that scored every row."""
    model_version: str
    """Its version."""
    horizon_days: int
    """Trading days ahead the predictions are for."""
    predictions: list[PredictionRead]
    """One prediction per row, in the order of the request; `run_id` is null."""
