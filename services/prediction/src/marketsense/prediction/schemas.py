"""Prediction API models."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class PredictionRead(BaseModel):
    """One stored prediction."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "symbol": "AAPL",
                    "as_of": "2026-11-25",
                    "horizon_days": 1,
                    "prob_up": 0.57,
                    "signal": "up",
                    "model_name": "baseline-predictor",
                    "model_version": "1",
                    "run_id": "6f1c1d2e-8a1b-4c55-9a43-2b1f0e7c9d10",
                }
            ]
        },
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
    run_id: str
    """Run that produced it."""


class ErrorRead(BaseModel):
    """An error response."""

    detail: str
    """What went wrong and what to do about it."""
