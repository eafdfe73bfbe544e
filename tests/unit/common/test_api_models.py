"""The error body every API shares, and the error responses routes document with it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from marketsense.common.api_models import (
    AUTH_ERRORS,
    UNREADABLE_BODY,
    ErrorRead,
    FieldError,
    error_response,
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
