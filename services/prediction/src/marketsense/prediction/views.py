"""Prediction REST routes for downstream apps; every route needs a reader key."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from marketsense.common.api_models import (
    AUTH_ERRORS,
    SYMBOL_PATTERN,
    UNREADABLE_BODY,
    IsoDay,
    counted_then_checked,
    error_response,
)
from marketsense.common.app import Describe
from marketsense.common.auth import Role
from marketsense.common.deps import authorized, get_runtime
from marketsense.common.runtime import Runtime
from marketsense.models.predictor import OnnxPredictor
from marketsense.prediction.deps import ReaderKey, ServingDep, SessionDep, get_serving
from marketsense.prediction.schemas import (
    PREDICT_ROWS,
    PredictionPage,
    PredictionRead,
    PredictRequest,
    PredictResponse,
)
from marketsense.prediction.scoring import (
    FeatureMismatch,
    feature_matrix,
    online_predictions,
    scorable,
)
from marketsense.prediction.service import (
    CURSOR_PATTERN,
    decode_cursor,
    encode_cursor,
    latest_prediction,
    list_predictions,
)

SymbolPath = Annotated[
    str, Path(pattern=SYMBOL_PATTERN, description="Stock symbol, such as AAPL.", examples=["AAPL"])
]

THREAD_ROWS = 64
"""Batches larger than this are scored in a worker thread, keeping the event loop answering."""

MAX_SYMBOLS = 200
"""Most symbols one list request may filter on."""

_SYMBOL = re.compile(SYMBOL_PATTERN)

_SYMBOLS_CHARS = MAX_SYMBOLS * 18
"""Longest `symbols` filter: the symbol limit of 16 characters, a comma and a space each."""

_INVALID = error_response(422, "Invalid request; `detail` lists each bad field.")
_NO_MODEL = error_response(503, "No predictor is loaded yet; retry shortly.")

_JSON = "application/json"

ROW_BYTES = 2048
"""Request body bytes allowed per row: a row's JSON is about 600 bytes compact, and indentation
or long decimals may take it past a kilobyte."""


def predict_body_bytes(max_rows: int) -> int:
    """The largest `POST /v1/predict` body that `max_rows` rows need, with room for the rest."""
    return (64 << 10) + max_rows * ROW_BYTES


MAX_ROWS_SENTENCE = "At most `MARKETSENSE_PREDICT_MAX_ROWS` rows"
"""How the row limit reads in the OpenAPI document until the service states its own."""

_SECURITY_SCHEME = "APIKeyHeader"
"""The name FastAPI gives the API key scheme that `require` declares."""


def _no_model() -> HTTPException:
    return HTTPException(
        503, "no predictor is loaded yet; retry shortly", headers={"Retry-After": "1"}
    )


def _invalid(loc: tuple[str | int, ...], msg: str, value: object) -> RequestValidationError:
    """A 422 shaped like FastAPI's own, naming the field."""
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": msg, "input": value}])


router = APIRouter(tags=["predictions"])


async def _load_latest(runtime: Runtime, symbol: str, predictor: OnnxPredictor) -> bytes | None:
    """The serialised latest prediction of a symbol, preferring the served version's."""
    manifest = predictor.manifest
    async with runtime.database.session() as session:
        prediction = await latest_prediction(
            session=session, symbol=symbol, preferred=(manifest.name, manifest.version)
        )
    if prediction is None:
        return None
    return PredictionRead.model_validate(prediction).model_dump_json().encode()


@router.get(
    "/v1/predictions/{symbol}/latest",
    response_model=PredictionRead,
    summary="The latest prediction for a symbol.",
    response_description="The prediction.",
    description=(
        "The prediction for the symbol's latest trading day, by the predictor version the "
        "service serves now if it has scored that day (after a promotion it re-scores within "
        "seconds), else by the version that did. An answer may be up to the service's "
        "`latest_cache_seconds` (1 s by default) old."
    ),
    responses={
        **AUTH_ERRORS,
        **error_response(404, "No prediction for this symbol."),
        **_INVALID,
        **_NO_MODEL,
    },
    # The key is checked in the route, not by a dependency: this route is the hot path, and
    # FastAPI's dependency resolution costs more than the rest of a cached answer.
    openapi_extra={"security": [{_SECURITY_SCHEME: []}]},
)
async def get_latest(symbol: SymbolPath, request: Request) -> Response:
    runtime, serving = get_runtime(request), get_serving(request)
    await authorized(request, Role.READER)
    predictor = serving.slot.current
    if predictor is None:
        raise _no_model()
    key = symbol.upper()
    body = serving.cache.get(key)
    if body is None:
        body = await serving.cache.get_or_load(key, lambda: _load_latest(runtime, key, predictor))
        if body is None:
            raise HTTPException(404, f"no prediction for symbol {key}")
    return Response(body, media_type=_JSON)


@router.get(
    "/v1/predictions",
    response_model=PredictionPage,
    summary="Stored predictions, filtered and paged.",
    response_description="One page of predictions and the cursor of the next.",
    description=(
        "Every stored prediction (every model version's, a shadow-scored challenger's "
        "included), oldest first, optionally for one trading day, some symbols and one model "
        "version. Follow `next_cursor` until it is null: pages neither repeat nor skip a "
        "prediction, even while new ones are stored."
    ),
    responses={**AUTH_ERRORS, **_INVALID},
)
async def get_predictions(
    _key: ReaderKey,
    session: SessionDep,
    as_of: Annotated[
        IsoDay | None,
        Query(description="Only this trading day; all days if omitted.", examples=["2026-11-25"]),
    ] = None,
    symbols: Annotated[
        str | None,
        Query(
            max_length=_SYMBOLS_CHARS,
            description=f"Comma-separated symbols (at most {MAX_SYMBOLS}); all if omitted.",
            examples=["AAPL,MSFT"],
        ),
    ] = None,
    model_version: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            description="Only this model version's predictions (the served one's, say, without "
            "a challenger's shadow rows); all versions if omitted.",
            examples=["3"],
        ),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=1000, description="Most predictions on one page.", examples=[100])
    ] = 100,
    cursor: Annotated[
        str | None,
        Query(
            pattern=CURSOR_PATTERN,
            max_length=40,
            description="`next_cursor` of the previous page, unchanged (URL-safe base64); omit "
            "for the first page.",
            examples=["aWQ6MTI4"],
        ),
    ] = None,
) -> PredictionPage:
    wanted = _parse_symbols(symbols) if symbols is not None else None
    try:
        after_id = decode_cursor(cursor) if cursor is not None else None
    except ValueError as exc:
        raise _invalid(("query", "cursor"), str(exc), cursor) from exc
    rows = await list_predictions(
        session=session,
        as_of=as_of,
        symbols=wanted,
        after_id=after_id,
        limit=limit + 1,
        model_version=model_version,
    )
    page = rows[:limit]
    return PredictionPage(
        items=[PredictionRead.model_validate(row) for row in page],
        next_cursor=encode_cursor(page[-1].id) if len(rows) > limit else None,
    )


@router.post(
    "/v1/predict",
    response_model=PredictResponse,
    summary="Score supplied feature rows with the served predictor.",
    response_description="One prediction per row, in the order of the request.",
    description=(
        "Online scoring: each row names a symbol, a day and every feature the served model "
        f"reads (`null` for a missing value). {MAX_ROWS_SENTENCE} per request, scored together "
        "in one call. Nothing is stored, so the predictions carry no `run_id`."
    ),
    responses={**UNREADABLE_BODY, **AUTH_ERRORS, **_INVALID, **_NO_MODEL},
)
async def predict(request: PredictRequest, _key: ReaderKey, serving: ServingDep) -> Response:
    predictor = serving.slot.current
    if predictor is None:
        raise _no_model()
    rows = counted_then_checked(
        PREDICT_ROWS, request.rows, limit=serving.max_rows, loc=("body", "rows"), noun="rows"
    )
    try:
        matrix = feature_matrix(predictor.manifest, rows)
    except FeatureMismatch as exc:
        raise RequestValidationError(exc.problems) from exc
    if len(rows) > THREAD_ROWS:
        probabilities = await asyncio.to_thread(predictor.predict_up, matrix)
    else:
        probabilities = predictor.predict_up(matrix)
    try:
        scorable(probabilities)
    except FeatureMismatch as exc:
        raise RequestValidationError(exc.problems) from exc
    result = online_predictions(
        predictor.manifest, rows, probabilities, threshold=serving.threshold
    )
    return Response(result.model_dump_json().encode(), media_type=_JSON)


def _parse_symbols(text: str) -> list[str]:
    """Upper-cased symbols of a comma-separated list; 422 naming `symbols` if one is malformed."""
    symbols = sorted({part.strip().upper() for part in text.split(",") if part.strip()})
    bad = [s for s in symbols if not _SYMBOL.fullmatch(s)]
    if bad or not symbols:
        raise _invalid(("query", "symbols"), f"not stock symbols: {bad or [text]}", text)
    if len(symbols) > MAX_SYMBOLS:
        raise _invalid(
            ("query", "symbols"), f"at most {MAX_SYMBOLS} symbols, got {len(symbols)}", text
        )
    return symbols


def describe_row_limit(max_rows: int) -> Describe:
    """An OpenAPI edit stating the row limit the service was configured with."""

    def describe(document: dict[str, Any]) -> None:
        operation = document["paths"]["/v1/predict"]["post"]
        operation["description"] = operation["description"].replace(
            MAX_ROWS_SENTENCE, f"At most {max_rows} rows"
        )
        request = document["components"]["schemas"]["PredictRequest"]
        request["properties"]["rows"]["maxItems"] = max_rows

    return describe
