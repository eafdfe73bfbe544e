"""Models every service's REST API shares: the error body, the responses routes document, and
the bounded types of what requests carry (symbols, days, row ids, cursors)."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Sequence
from typing import Annotated, Any, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

T = TypeVar("T")

MAX_ROW_ID = 2**63 - 1
"""Largest row id: PostgreSQL's BIGINT and SQLite's INTEGER both hold 64 signed bits."""

MAX_INT32 = 2**31 - 1
"""Largest value of an INTEGER column in PostgreSQL (model version numbers)."""

RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
"""A database row id: positive and within a 64-bit integer, as both databases store it."""

SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,15}$"
"""A stock symbol: a letter or digit, then up to 15 letters, digits, '.' or '-'. It never
consists of dots or dashes only, which would name a folder (`..`) in the object store."""

Symbol = Annotated[
    str,
    StringConstraints(pattern=SYMBOL_PATTERN),
    AfterValidator(str.upper),
    Field(description="Stock symbol, such as AAPL or BRK.B; read in upper case."),
]
"""A stock symbol as requests carry it, upper-cased once valid."""

SYMBOLS: TypeAdapter[list[Symbol]] = TypeAdapter(list[Symbol])
"""Validates a list of symbols one by one."""

EARLIEST_DAY = dt.date(1970, 1, 2)
"""First trading day a request may name: no market data the product reads is older, and a day
that came from a zero timestamp (1970-01-01) is a mistake rather than a choice."""

LATEST_DAY = dt.date(2099, 12, 31)
"""Last day a request may name: far beyond any trading day with data, and well inside what
every store and library in the pipeline holds (pandas stops in 2262)."""

_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DAY_PATTERN = r"^(19[7-9][0-9]|20[0-9][0-9])-[0-9]{2}-[0-9]{2}$"


def _iso_text(value: object) -> object:
    """Only a `YYYY-MM-DD` string (or a date, from Python callers) is a day: pydantic would
    otherwise read a number such as 0 as seconds since 1970."""
    if isinstance(value, dt.date) or (isinstance(value, str) and _ISO_DAY.fullmatch(value)):
        return value
    raise ValueError("use an ISO 8601 date, YYYY-MM-DD")


def _within_days(day: dt.date) -> dt.date:
    """A day between EARLIEST_DAY and LATEST_DAY."""
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise ValueError(f"{day} is outside {EARLIEST_DAY} to {LATEST_DAY}")
    return day


IsoDay = Annotated[
    dt.date,
    BeforeValidator(_iso_text),
    AfterValidator(_within_days),
    Field(json_schema_extra={"pattern": _DAY_PATTERN}),
]
"""A day written `YYYY-MM-DD`, from 1970-01-02 to 2099-12-31."""

ID_CURSOR_PATTERN = r"^[1-9][0-9]{0,18}$"
"""A cursor that is a row id in decimal."""

CURSOR_INVALID = "not a cursor this API returned; pass a `next_cursor` unchanged"
"""Why a cursor is refused: cursors are opaque, so the only fix is to pass one back."""


def row_id(text: str, *, least: int = 1) -> int:
    """The row id (at least `least`) a decimal string names; ValueError, with a sentence a
    client can act on, for anything else, digits beyond a 64-bit id included."""
    # ASCII digits only, and few enough that int() neither refuses nor takes long.
    if not re.fullmatch(r"[0-9]{1,19}", text) or not least <= int(text) <= MAX_ROW_ID:
        raise ValueError(CURSOR_INVALID)
    return int(text)


def validation_error(loc: tuple[str | int, ...], msg: str) -> RequestValidationError:
    """A 422 shaped like FastAPI's own, naming the field and what to fix."""
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": msg, "input": None}])


def counted_then_checked(
    adapter: TypeAdapter[list[T]],
    items: Sequence[object],
    *,
    limit: int,
    loc: tuple[str | int, ...],
    noun: str,
) -> list[T]:
    """`items` validated one by one, but only once their count is within `limit`: a longer list
    is refused naming the limit before any item is looked at."""
    if len(items) > limit:
        raise validation_error(loc, f"at most {limit} {noun} per request, got {len(items)}")
    try:
        return adapter.validate_python(items)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": (*loc, *error["loc"])} for error in exc.errors(include_url=False)]
        ) from exc


def distinct_symbols(symbols: Sequence[str], *, loc: tuple[str | int, ...]) -> list[str]:
    """`symbols` unchanged if none is listed twice; else a 422 naming the repeated ones."""
    repeated = sorted(s for s, n in Counter(symbols).items() if n > 1)
    if repeated:
        raise validation_error(loc, f"symbols listed twice: {repeated[:5]}")
    return list(symbols)


class FieldError(BaseModel):
    """One problem with a request that does not match its schema."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"loc": ["body", "as_of"], "msg": "Field required", "type": "missing"}]
        }
    )

    loc: list[str | int]
    """Where: `body`, `query`, `path` or `header`, then the field path."""
    msg: str
    """What is wrong with it."""
    type: str
    """Kind of problem, such as `missing` or `string_pattern_mismatch`."""


class ErrorRead(BaseModel):
    """An error response: a sentence, or for a request that does not match its schema (422)
    FastAPI's list of field errors."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"detail": "no run 6f1c1d2e-8a1b-4c55-9a43-2b1f0e7c9d10"},
                {
                    "detail": [
                        {"loc": ["body", "as_of"], "msg": "Field required", "type": "missing"}
                    ]
                },
            ]
        }
    )

    detail: str | list[FieldError]
    """What went wrong and what to do about it."""


Responses = dict[int | str, dict[str, Any]]
"""Documented responses of a route, as FastAPI's `responses=` takes them."""


def error_response(status: int, description: str) -> Responses:
    """One documented error status whose body is an `ErrorRead`."""
    return {status: {"model": ErrorRead, "description": description}}


AUTH_ERRORS: Responses = {
    **error_response(401, "No `X-API-Key` header, or an unknown or revoked key."),
    **error_response(403, "The key's role may not do this."),
}
"""What every route behind an API key may answer."""

UNREADABLE_BODY: Responses = error_response(
    400, "The body cannot be read as JSON text (not UTF-8)."
)
"""What a route with a JSON body answers when the body is not UTF-8 text."""
