"""The error body every API shares, and the error responses routes document with it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from marketsense.common.api_models import (
    AUTH_ERRORS,
    MAX_ROW_ID,
    SYMBOLS,
    UNREADABLE_BODY,
    ErrorRead,
    FieldError,
    IsoDay,
    Symbol,
    counted_then_checked,
    distinct_symbols,
    error_response,
    row_id,
)


def documented(responses: dict[int | str, dict[str, Any]]) -> dict[str, Any]:
    """The responses one route declaring `responses` gets in the app's OpenAPI document."""
    app = FastAPI()

    @app.post("/things", responses=responses)
    async def make_thing() -> dict[str, str]:
        return {}

    operation: dict[str, Any] = app.openapi()["paths"]["/things"]["post"]
    return dict(operation["responses"])


def test_error_response_documents_one_status_with_the_error_body() -> None:
    assert error_response(404, "No such run.") == {
        404: {"model": ErrorRead, "description": "No such run."}
    }


def test_routes_behind_a_key_document_401_and_403_with_the_error_body() -> None:
    responses = documented(AUTH_ERRORS | UNREADABLE_BODY)

    assert set(responses) == {"200", "400", "401", "403"}
    for status in ("400", "401", "403"):
        schema = responses[status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorRead"}, status
    assert "X-API-Key" in responses["401"]["description"]
    assert "role" in responses["403"]["description"]
    assert "UTF-8" in responses["400"]["description"]


@pytest.mark.parametrize("model", [ErrorRead, FieldError])
def test_the_documented_examples_are_valid_bodies(model: type[ErrorRead | FieldError]) -> None:
    examples = model.model_json_schema()["examples"]

    assert examples
    for example in examples:
        assert model.model_validate(example).model_dump(mode="json") == example


def test_error_body_is_a_sentence_or_a_list_of_field_errors() -> None:
    sentence = ErrorRead.model_validate({"detail": "no run r1"})
    fields = ErrorRead.model_validate(
        {"detail": [{"loc": ["query", "limit"], "msg": "too big", "type": "less_than_equal"}]}
    )

    assert sentence.detail == "no run r1"
    assert fields.detail == [
        FieldError(loc=["query", "limit"], msg="too big", type="less_than_equal")
    ]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="no-detail"),
        pytest.param({"detail": {"why": "x"}}, id="object"),
        pytest.param({"detail": [{"loc": ["body"]}]}, id="field-error-without-msg"),
    ],
)
def test_error_body_refuses_other_shapes(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ErrorRead.model_validate(body)


@pytest.mark.parametrize("symbol", ["AAPL", "brk.b", "BF-B", "0700", "A" * 16])
def test_a_symbol_is_a_letter_or_digit_then_letters_digits_dots_or_dashes(symbol: str) -> None:
    assert TypeAdapter(Symbol).validate_python(symbol) == symbol.upper()


@pytest.mark.parametrize("symbol", ["", ".", "..", "-", ".-", "-A", " A", "A B", "A" * 17, "é"])
def test_a_symbol_of_dots_dashes_or_other_characters_is_refused(symbol: str) -> None:
    with pytest.raises(ValidationError, match="pattern"):
        TypeAdapter(Symbol).validate_python(symbol)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "YYYY-MM-DD"),
        ("0", "YYYY-MM-DD"),
        ("2026-11-20T00:00:00", "YYYY-MM-DD"),
        ("1970-01-01", "outside 1970-01-02 to 2099-12-31"),
        ("2100-01-01", "outside 1970-01-02 to 2099-12-31"),
        ("2026-02-30", "valid date"),
    ],
)
def test_a_day_is_an_iso_date_between_the_bounds(value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TypeAdapter(IsoDay).validate_python(value)
    assert TypeAdapter(IsoDay).validate_python("1970-01-02") == dt.date(1970, 1, 2)
    assert TypeAdapter(IsoDay).validate_json('"2099-12-31"') == dt.date(2099, 12, 31)


@pytest.mark.parametrize("text", [str(MAX_ROW_ID + 1), "0", "-1", "+1", "²", "1" * 5000, ""])
def test_a_row_id_cursor_beyond_64_bits_or_not_decimal_is_refused_in_plain_words(
    text: str,
) -> None:
    with pytest.raises(ValueError, match="not a cursor this API returned"):
        row_id(text)
    assert row_id(str(MAX_ROW_ID)) == MAX_ROW_ID
    assert row_id("0", least=0) == 0


def test_a_list_over_its_limit_is_refused_before_any_item_is_checked() -> None:
    with pytest.raises(RequestValidationError) as refused:
        counted_then_checked(SYMBOLS, [".."] * 3, limit=2, loc=("body", "universe"), noun="symbols")

    [error] = refused.value.errors()
    assert error["loc"] == ("body", "universe")
    assert error["msg"] == "at most 2 symbols per request, got 3"


def test_a_list_within_its_limit_is_checked_item_by_item_naming_each_place() -> None:
    assert counted_then_checked(
        SYMBOLS, ["aapl"], limit=2, loc=("body", "universe"), noun="symbols"
    ) == ["AAPL"]
    with pytest.raises(RequestValidationError) as refused:
        counted_then_checked(SYMBOLS, ["A", ".."], limit=2, loc=("body", "universe"), noun="s")

    assert [e["loc"] for e in refused.value.errors()] == [("body", "universe", 1)]


def test_symbols_listed_twice_are_named() -> None:
    with pytest.raises(RequestValidationError, match="B"):
        distinct_symbols(["A", "B", "C", "B"], loc=("body", "universe"))
    assert distinct_symbols(["A", "B"], loc=("body", "universe")) == ["A", "B"]
