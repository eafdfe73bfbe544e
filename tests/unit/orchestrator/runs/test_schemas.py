"""What a request to start a run may hold."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from marketsense.orchestrator.runs.schemas import RunCreate


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"as_of": "2026-11-20", "symbols": []}, "at least 1 item"),
        ({"as_of": "2026-11-20", "symbols": ["AAPL", "aapl"]}, "listed twice"),
        ({"as_of": "2026-11-20", "symbols": ["no spaces"]}, "not valid symbols"),
        ({"as_of": "2026-11-21", "symbols": ["AAPL"]}, "weekend"),
        ({"as_of": "2999-01-02", "symbols": ["AAPL"]}, "future"),
        ({"as_of": "yesterday", "symbols": ["AAPL"]}, "valid date"),
        ({"as_of": "2026-11-20", "symbols": ["AAPL"], "extra": 1}, "Extra inputs"),
    ],
)
def test_run_request_rejects_bad_input_with_a_reason(body: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RunCreate.model_validate(body)


def test_run_request_normalises_symbols_to_upper_case() -> None:
    body = RunCreate.model_validate({"as_of": "2026-11-20", "symbols": [" aapl", "BRK.B"]})
    assert body.universe == ["AAPL", "BRK.B"]
