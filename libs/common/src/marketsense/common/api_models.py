"""Models every service's REST API shares: the error body and UTC timestamps."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict


def _as_utc(value: dt.datetime) -> dt.datetime:
    # SQLite hands timestamps back without their zone; every stored timestamp is UTC.
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


UtcDateTime = Annotated[dt.datetime, AfterValidator(_as_utc)]
"""A timestamp that is always serialised with its zone (UTC), whatever the database returned."""


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
