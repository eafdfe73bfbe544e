"""Prediction REST routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from marketsense.common.runtime import Runtime
from marketsense.prediction.schemas import ErrorRead, PredictionRead
from marketsense.prediction.service import latest_prediction

SymbolPath = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9.\-]{1,16}$", description="Stock symbol, such as AAPL.")
]


def router(runtime: Runtime) -> APIRouter:
    """Routes for downstream apps."""
    api = APIRouter(prefix="/v1/predictions", tags=["predictions"])

    @api.get(
        "/{symbol}/latest",
        response_model=PredictionRead,
        summary="The most recent prediction for a symbol.",
        responses={404: {"model": ErrorRead, "description": "No prediction for this symbol."}},
    )
    async def get_latest(symbol: SymbolPath) -> PredictionRead:
        async with runtime.database.session() as session:
            prediction = await latest_prediction(session=session, symbol=symbol.upper())
        if prediction is None:
            raise HTTPException(404, f"no prediction for symbol {symbol.upper()}")
        return PredictionRead.model_validate(prediction)

    return api
