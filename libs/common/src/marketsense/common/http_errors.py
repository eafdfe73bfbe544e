"""Error answers every service shares: 422s that name the field without echoing the input, and
405s whose `Allow` lists every method of the path."""

from __future__ import annotations

import re
from collections.abc import MutableMapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.routing import Match

MAX_MESSAGE_CHARS = 300
"""Longest error message returned; a validator that quotes a huge input is cut short."""
MAX_LOCATION_CHARS = 64
"""Longest part of an error's location; a made-up field name can be any length."""

ALLOW_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
"""Methods a 405's `Allow` header may list, in the order it lists them."""

_INTERNALS: Sequence[tuple[re.Pattern[str], str]] = (
    (re.compile(r"invalid literal for int\(\) with base \d+: .*", re.S), "not a whole number"),
    (
        re.compile(r"Exceeds the limit \(\d+ digits\) for integer string conversion.*", re.S),
        "a number with too many digits",
    ),
    (re.compile(r"could not convert string to float: .*", re.S), "not a number"),
)
"""Python's own words for a bad number, which say how the server parses rather than what to fix,
and what a client reads instead."""


def plain_message(message: str) -> str:
    """An error message without Python's internals, at most `MAX_MESSAGE_CHARS` long."""
    for pattern, plain in _INTERNALS:
        message = pattern.sub(plain, message)
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    return message


def field_error(error: dict[str, Any]) -> dict[str, Any]:
    """One validation error as the API documents it (`loc`, `msg`, `type`): never the input,
    which may be huge or not JSON at all (NaN, Infinity)."""
    message = str(error.get("msg", ""))
    reason = (error.get("ctx") or {}).get("error")
    if error.get("type") == "json_invalid" and isinstance(reason, str):
        message = f"{message}: {reason}"
    return {
        "loc": [_location(part) for part in error.get("loc", ())],
        "msg": plain_message(message),
        "type": str(error.get("type", "value_error")),
    }


def _location(part: object) -> str | int:
    if isinstance(part, int):
        return part
    text = str(part)
    return text if len(text) <= MAX_LOCATION_CHARS else text[: MAX_LOCATION_CHARS - 1] + "…"


async def validation_error_answer(_request: Request, exc: Exception) -> Response:
    """A 422 listing each bad field, its problem and its kind."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": [field_error(error) for error in exc.errors()]}, 422)


async def http_error_answer(request: Request, exc: Exception) -> Response:
    """FastAPI's answer to an HTTP error; a 405 lists every method its path allows."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        allowed = allowed_methods(request.app, request.scope)
        exc = HTTPException(405, exc.detail, {**(exc.headers or {}), "Allow": ", ".join(allowed)})
    return await http_exception_handler(request, exc)


def allowed_methods(app: FastAPI, scope: MutableMapping[str, Any]) -> list[str]:
    """Every method some route of the app answers on the request's path."""
    allowed = []
    for method in ALLOW_ORDER:
        for route in app.router.routes:
            # A fresh scope per probe: matching may note what it found in the scope it is given.
            probe = {
                "type": "http",
                "method": method,
                "path": scope["path"],
                "root_path": scope.get("root_path", ""),
                "headers": [],
                "query_string": b"",
            }
            if route.matches(probe)[0] is Match.FULL:
                allowed.append(method)
                break
    return allowed


def install_error_answers(app: FastAPI) -> None:
    """Answer validation and HTTP errors as above instead of FastAPI's defaults."""
    app.add_exception_handler(RequestValidationError, validation_error_answer)
    app.add_exception_handler(HTTPException, http_error_answer)
