"""The prediction API bounds what it is sent before the work it causes: rows counted before
each is checked, features within float32, symbols, days and cursors within what the stores
hold; and no probability that is not a number reaches a response."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from marketsense.common.features import FEATURE_COLUMNS
from tests.artifacts import small_predictor
from tests.prediction_support import MAX_ROWS, SERVED, Api, feature_row, prediction_app, serve


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    """The prediction service serving a local predictor, on the embedded default."""
    small_predictor(tmp_path / "local", seed=11, name=SERVED[0], version=SERVED[1])
    async for served in serve(prediction_app(tmp_path)):
        yield served


async def test_predict_refuses_far_more_rows_than_the_limit_before_checking_any(
    tmp_path: Path,
) -> None:
    # Every row is invalid: checking each would answer with 700,000 field errors. The body limit
    # is raised out of the way, so the row count is what refuses it.
    small_predictor(tmp_path / "local", seed=11, name=SERVED[0], version=SERVED[1])
    async for api in serve(prediction_app(tmp_path, http_max_body_kib=8192)):
        response = await api.client.post(
            "/v1/predict", json={"rows": [{}] * 700_000}, headers={"X-API-Key": api.key}
        )

    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "rows"]
    assert error["msg"] == f"at most {MAX_ROWS} rows per request, got 700000"


@pytest.mark.parametrize("value", [1e308, -1e308, 3.5e38, -3.5e38])
async def test_predict_refuses_features_beyond_what_float32_holds(api: Api, value: float) -> None:
    response = await api.predict([feature_row(), feature_row(ret_1d=value)])

    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "rows", 1, "features", "ret_1d"]
    assert "than or equal to" in error["msg"]
    assert "3402823466385288" in error["msg"]


async def test_predict_refuses_features_the_model_cannot_score_rather_than_answer_nan(
    api: Api,
) -> None:
    # Within float32 one by one, yet the model's arithmetic overflows on them (alone in a
    # batch, this model answers NaN for them).
    huge = dict.fromkeys(FEATURE_COLUMNS, 3.4e38)
    response = await api.predict([feature_row() | {"features": huge}])

    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "rows", 0, "features"]
    assert "cannot score" in error["msg"]


@pytest.mark.parametrize(
    ("row", "field"),
    [
        (feature_row(".."), "symbol"),
        (feature_row("-"), "symbol"),
        (feature_row() | {"as_of": 0}, "as_of"),
        (feature_row() | {"as_of": "0001-01-01"}, "as_of"),
        (feature_row() | {"features": {f"f{i}": 0.0 for i in range(257)}}, "features"),
    ],
)
async def test_predict_refuses_rows_naming_no_ticker_a_day_out_of_bounds_or_too_many_features(
    api: Api, row: dict[str, Any], field: str
) -> None:
    response = await api.predict([feature_row(), row])

    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "rows", 1, field]


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [_cursor(f"id:{2**63}"), _cursor("id:²"), _cursor("id:" + "9" * 5000)[:40], "%C2%B2", "²"],
)
async def test_listing_refuses_a_cursor_beyond_a_row_id_or_not_one_in_plain_words(
    api: Api, cursor: str
) -> None:
    response = await api.get("/v1/predictions", cursor=cursor)

    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", "cursor"]
    assert "int()" not in error["msg"]
    assert "digits" not in error["msg"]


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/v1/predictions/-/latest", {}),
        ("/v1/predictions/%2E/latest", {}),
        ("/v1/predictions/%2E%2E/latest", {}),
        ("/v1/predictions", {"symbols": "AAPL,.."}),
        ("/v1/predictions", {"as_of": "0"}),
        ("/v1/predictions", {"as_of": "1970-01-01"}),
    ],
)
async def test_reading_refuses_symbols_of_dots_or_dashes_and_days_out_of_bounds(
    api: Api, url: str, params: dict[str, str]
) -> None:
    response = await api.get(url, **params)

    assert response.status_code == 422, response.text
