"""Models every service's REST API shares: the error body and the responses routes document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


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
