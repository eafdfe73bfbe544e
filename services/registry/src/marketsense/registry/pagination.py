"""Pages of a list: a bounded size and an opaque cursor naming where the previous page ended."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Annotated, TypeVar

from fastapi import HTTPException, Query

from marketsense.common.api_models import CURSOR_INVALID, MAX_ROW_ID

T = TypeVar("T")

PAGE_LIMIT_MAX = 500
"""Most entries one page may hold."""
_CURSOR_CHARS = 200
_NAME_CHARS = 128

PageLimit = Annotated[
    int, Query(ge=1, le=PAGE_LIMIT_MAX, description="Entries per page, 1 to 500.")
]
PageCursor = Annotated[
    str | None,
    Query(
        max_length=_CURSOR_CHARS,
        description="`next_cursor` of the previous page, unchanged; omit for the first page.",
    ),
]


def encode_cursor(position: int | str) -> str:
    """An opaque cursor for the last entry of a page: a row id, a version number or a name."""
    # Opaque so clients pass it back rather than build one; the encoding may change.
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def _decoded(text: str) -> object:
    """The JSON value inside a cursor; ValueError for anything this API did not write."""
    try:
        padded = text + "=" * (-len(text) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (UnicodeError, binascii.Error, ValueError) as error:
        raise ValueError(CURSOR_INVALID) from error


def number_cursor(text: str | None) -> int | None:
    """The id or version number a cursor names, or None for the first page."""
    if text is None:
        return None
    value = _decoded(text)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ROW_ID:
        raise ValueError(CURSOR_INVALID)
    return value


def name_cursor(text: str | None) -> str | None:
    """The name a cursor names, or None for the first page."""
    if text is None:
        return None
    value = _decoded(text)
    if not isinstance(value, str) or not 0 < len(value) <= _NAME_CHARS:
        raise ValueError(CURSOR_INVALID)
    return value


def read_cursor(parse: Callable[[str | None], T | None], text: str | None) -> T | None:
    """A route's cursor, or a 422 naming the `cursor` parameter."""
    try:
        return parse(text)
    except ValueError as error:
        raise HTTPException(422, f"cursor: {error}") from error


def cut_page(
    rows: Sequence[T], limit: int, position: Callable[[T], int | str]
) -> tuple[list[T], str | None]:
    """The first `limit` of up to `limit + 1` rows fetched, and the cursor of the next page
    (None when the extra row shows there is none)."""
    page = list(rows[:limit])
    more = len(rows) > limit
    return page, encode_cursor(position(page[-1])) if more and page else None
