"""What a request to start a run may hold."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from marketsense.orchestrator.runs.schemas import RunCreate


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"as_of": "2026-11-20", "symbols": []}, "at least 1 item"),
        ({"as_of": "2099-01-02", "symbols": ["AAPL"]}, "future"),
        ({"as_of": "2999-01-02", "symbols": ["AAPL"]}, "outside 1970-01-02 to 2099-12-31"),
        ({"as_of": "0001-01-01", "symbols": ["AAPL"]}, "outside 1970-01-02 to 2099-12-31"),
        ({"as_of": "yesterday", "symbols": ["AAPL"]}, "YYYY-MM-DD"),
        ({"as_of": 0, "symbols": ["AAPL"]}, "YYYY-MM-DD"),
        ({"as_of": "0", "symbols": ["AAPL"]}, "YYYY-MM-DD"),
        ({"as_of": "2026-11-20", "symbols": ["AAPL"], "extra": 1}, "Extra inputs"),
    ],
)
def test_run_request_rejects_bad_input_with_a_reason(body: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RunCreate.model_validate(body)


def test_run_request_leaves_its_symbols_for_the_route_to_check_once_counted() -> None:
    body = RunCreate.model_validate({"as_of": "2026-11-20", "universe": ["..", 7, "aapl"]})

    assert body.universe == ["..", 7, "aapl"]
