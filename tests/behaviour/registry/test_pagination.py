"""Cursors name where a page ended and nothing else; pages stop when no row is left."""

from __future__ import annotations

import pytest

from marketsense.common.api_models import MAX_ROW_ID
from marketsense.registry.pagination import cut_page, encode_cursor, name_cursor, number_cursor


@pytest.mark.parametrize("position", [1, 42, MAX_ROW_ID])
def test_a_number_cursor_reads_back_the_position_it_was_made_from(position: int) -> None:
    assert number_cursor(encode_cursor(position)) == position


def test_a_name_cursor_reads_back_the_name_it_was_made_from() -> None:
    assert name_cursor(encode_cursor("finbert-2026.v2")) == "finbert-2026.v2"
    assert name_cursor(None) is None
    assert number_cursor(None) is None


@pytest.mark.parametrize(
    "text",
    [
        "42",  # a bare id is not a cursor this API writes
        "!!!",
        "²",
        encode_cursor(0),
        encode_cursor(MAX_ROW_ID + 1),
        encode_cursor("42"),
        encode_cursor(True),
        encode_cursor([1]),  # type: ignore[arg-type]
    ],
)
def test_a_number_cursor_this_api_did_not_write_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="next_cursor"):
        number_cursor(text)


@pytest.mark.parametrize("text", [encode_cursor(3), encode_cursor(""), encode_cursor("x" * 129)])
def test_a_name_cursor_that_names_no_model_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="next_cursor"):
        name_cursor(text)


def test_a_page_has_a_next_cursor_only_when_a_row_is_left_over() -> None:
    full, more = cut_page([5, 4, 3], 2, lambda n: n)
    last, none = cut_page([2, 1], 2, lambda n: n)
    empty, nothing = cut_page(list[int](), 2, lambda n: n)

    assert (full, number_cursor(more)) == ([5, 4], 4)
    assert (last, none) == ([2, 1], None)
    assert (empty, nothing) == ([], None)
