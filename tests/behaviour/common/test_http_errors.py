"""Error answers of every service: a 422 names each bad field without echoing its input (huge, or
not JSON at all) or Python's internals, and a 405 lists every method its path allows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from marketsense.common.auth import Role
from marketsense.common.http_errors import (
    MAX_LOCATION_CHARS,
    MAX_MESSAGE_CHARS,
    field_error,
    plain_message,
)
from tests.behaviour.common.guard_support import BIG_LIMIT, Guarded, guarded_app


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[Guarded]:
    async with guarded_app(tmp_path / "home") as app:
        yield app


async def test_a_422_names_the_field_without_echoing_a_huge_input(guarded: Guarded) -> None:
    huge = "x" * (BIG_LIMIT - 1000)

    response = await guarded.api.post(
        "/big", json={"name": "ok", "count": huge}, headers=guarded.key(Role.READER)
    )

    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "loc": ["body", "count"],
                "msg": "Input should be a valid integer, unable to parse string as an integer",
                "type": "int_parsing",
            }
        ]
    }


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
async def test_a_422_for_a_body_with_a_non_finite_number_is_json(
    guarded: Guarded, number: str
) -> None:
    response = await guarded.api.post(
        "/items",
        content=f'{{"name": "a", "count": {number}}}'.encode(),
        headers=guarded.key(Role.READER) | {"Content-Type": "application/json"},
    )

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "count"]
    assert "input" not in error


@pytest.mark.parametrize(
    ("name", "message"),
    [
        pytest.param("#abc", "Value error, not a whole number", id="not-a-number"),
        pytest.param("#" + "9" * 5000, "Value error, a number with too many digits", id="digits"),
    ],
)
async def test_a_422_does_not_show_pythons_own_words(
    guarded: Guarded, name: str, message: str
) -> None:
    response = await guarded.api.post(
        "/big", json={"name": name, "count": 1}, headers=guarded.key(Role.READER)
    )

    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"loc": ["body", "name"], "msg": message, "type": "value_error"}
    ]


async def test_an_unreadable_body_is_a_422_saying_where_and_why(guarded: Guarded) -> None:
    response = await guarded.api.post(
        "/items",
        content=b'{"name": }',
        headers=guarded.key(Role.READER) | {"Content-Type": "application/json"},
    )

    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"loc": ["body", 9], "msg": "JSON decode error: Expecting value", "type": "json_invalid"}
    ]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        pytest.param("OPTIONS", "/items/5", "GET, PUT", id="options-on-two-routes"),
        pytest.param("DELETE", "/items/5", "GET, PUT", id="delete-on-two-routes"),
        pytest.param("GET", "/items", "POST", id="get-on-one-route"),
        pytest.param("POST", "/healthz", "GET", id="operations-route"),
    ],
)
async def test_a_405_lists_every_method_the_path_allows(
    guarded: Guarded, method: str, path: str, allowed: str
) -> None:
    response = await guarded.api.request(method, path, headers=guarded.key(Role.READER))

    assert response.status_code == 405
    assert response.headers["Allow"] == allowed
    assert response.json() == {"detail": "Method Not Allowed"}


def test_a_long_message_is_cut_short() -> None:
    assert len(plain_message("y" * 10_000)) == MAX_MESSAGE_CHARS
    assert plain_message("short") == "short"


def test_a_field_error_keeps_location_message_and_kind_only() -> None:
    error: dict[str, Any] = {
        "type": "extra_forbidden",
        "loc": ("body", "k" * 1000, 3),
        "msg": "Extra inputs are not permitted",
        "input": float("nan"),
        "ctx": {"error": ValueError("x")},
    }

    assert field_error(error) == {
        "loc": ["body", "k" * (MAX_LOCATION_CHARS - 1) + "…", 3],
        "msg": "Extra inputs are not permitted",
        "type": "extra_forbidden",
    }
