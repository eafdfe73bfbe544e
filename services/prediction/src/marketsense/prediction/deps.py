"""Dependencies of the prediction routes, each declared once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from marketsense.common.deps import ReaderKey, RuntimeDep, SessionDep, component_state
from marketsense.prediction.latest_cache import ResponseCache
from marketsense.prediction.service import PredictorHolder

__all__ = ["ReaderKey", "RuntimeDep", "Serving", "ServingDep", "SessionDep", "get_serving"]


@dataclass(frozen=True)
class Serving:
    """What the prediction routes answer with: the served predictor, cached answers, limits."""

    slot: PredictorHolder
    """The predictor in service (None until one loads)."""
    cache: ResponseCache
    """Serialised latest predictions by symbol, for a second at most."""
    threshold: float
    """Distance from 0.5 that makes a probability an up or down signal."""
    max_rows: int
    """Most feature rows one `POST /v1/predict` may carry."""


def get_serving(request: Request) -> Serving:
    """The prediction component's serving state."""
    return component_state(request, "prediction", Serving)


ServingDep = Annotated[Serving, Depends(get_serving)]
"""The predictor and answer cache the routes serve with."""
