"""Cursors of the prediction listing: opaque, round-tripping, refusing anything else."""

from __future__ import annotations

import base64

import pytest

from marketsense.prediction.service import decode_cursor, encode_cursor


@pytest.mark.parametrize("last_id", [0, 1, 127, 2**53])
def test_a_cursor_continues_after_the_id_it_was_made_from(last_id: int) -> None:
    cursor = encode_cursor(last_id)

    assert decode_cursor(cursor) == last_id
    assert "=" not in cursor  # safe in a query string as it is


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("", id="empty"),
        pytest.param("not-a-cursor", id="garbage"),
        pytest.param(base64.urlsafe_b64encode(b"id:xyz").decode(), id="not-a-number"),
        pytest.param(base64.urlsafe_b64encode(b"id:-5").decode(), id="negative"),
        pytest.param(base64.urlsafe_b64encode(b"offset:5").decode(), id="other-prefix"),
        pytest.param(base64.urlsafe_b64encode(b"\xff\xfe").decode(), id="not-text"),
        pytest.param("a", id="bad-padding"),
    ],
)
def test_anything_the_api_did_not_hand_out_is_refused(cursor: str) -> None:
    with pytest.raises(ValueError, match="not a cursor this API returned"):
        decode_cursor(cursor)
