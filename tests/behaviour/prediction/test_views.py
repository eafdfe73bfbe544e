"""The prediction API downstream apps call: latest, listing, online scoring, keys, OpenAPI."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from marketsense.common.auth import Role, revoke_key
from marketsense.common.db.models import Prediction, Run
from marketsense.common.features import FEATURE_COLUMNS
from marketsense.common.runtime import Runtime
from marketsense.common.states import RunState
from marketsense.models.predictor import OnnxPredictor
from marketsense.prediction.views import MAX_SYMBOLS
from tests.artifacts import small_predictor
from tests.model_registry_rows import new_api_key
from tests.prediction_support import DAY, MAX_ROWS, SERVED, Api, feature_row, prediction_app, serve

EARLIER = DAY - dt.timedelta(days=1)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    """The prediction service serving a local predictor, on the embedded default."""
    small_predictor(tmp_path / "local", seed=11, name=SERVED[0], version=SERVED[1])
    async for served in serve(prediction_app(tmp_path)):
        yield served


async def _store(runtime: Runtime, rows: list[tuple[str, dt.date, str]]) -> list[int]:
    """Predictions (symbol, day, version of the served model's name), one run per day; their
    ids."""
    runs = {as_of: str(uuid.uuid4()) for _, as_of, _ in rows}
    async with runtime.transaction() as session:
        session.add_all(
            Run(id=run_id, as_of=as_of, state=RunState.SUCCESS, symbols=len(rows))
            for as_of, run_id in runs.items()
        )
        await session.flush()
        stored = [
            Prediction(
                run_id=runs[as_of],
                symbol=symbol,
                as_of=as_of,
                horizon_days=1,
                prob_up=0.5 + i / 1000,
                signal="flat",
                model_name=SERVED[0],
                model_version=version,
            )
            for i, (symbol, as_of, version) in enumerate(rows)
        ]
        session.add_all(stored)
        await session.flush()
        return [p.id for p in stored]


async def test_latest_is_the_served_versions_prediction_for_the_symbols_latest_day(
    api: Api,
) -> None:
    await _store(
        api.runtime,
        [
            ("AAA", EARLIER, "5"),
            ("AAA", DAY, "5"),
            ("AAA", DAY, "4"),  # stored later, but not by the served version
            ("BBB", EARLIER, "5"),
            ("BBB", DAY, "4"),  # the latest day, scored only by another version
        ],
    )
    aaa = await api.get("/v1/predictions/aaa/latest")
    bbb = await api.get("/v1/predictions/BBB/latest")

    assert aaa.status_code == 200
    assert aaa.headers["content-type"] == "application/json"
    assert {k: aaa.json()[k] for k in ("symbol", "as_of", "model_name", "model_version")} == {
        "symbol": "AAA",
        "as_of": DAY.isoformat(),
        "model_name": SERVED[0],
        "model_version": "5",
    }
    assert set(aaa.json()) == {
        "symbol",
        "as_of",
        "horizon_days",
        "prob_up",
        "signal",
        "model_name",
        "model_version",
        "run_id",
    }
    assert (bbb.json()["as_of"], bbb.json()["model_version"]) == (DAY.isoformat(), "4")


async def test_latest_of_an_unknown_symbol_is_404(api: Api) -> None:
    response = await api.get("/v1/predictions/NOPE/latest")

    assert response.status_code == 404
    assert response.json() == {"detail": "no prediction for symbol NOPE"}


async def test_latest_is_answered_from_memory_for_the_cache_time(tmp_path: Path) -> None:
    small_predictor(tmp_path / "local", seed=11, name=SERVED[0], version=SERVED[1])
    async for api in serve(prediction_app(tmp_path, latest_cache_seconds=300)):
        await _store(api.runtime, [("AAA", EARLIER, "5")])
        first = await api.get("/v1/predictions/AAA/latest")
        await _store(api.runtime, [("AAA", DAY, "5")])
        cached = await api.get("/v1/predictions/AAA/latest")

    assert first.json()["as_of"] == EARLIER.isoformat()
    assert cached.json() == first.json()


async def test_listing_pages_through_every_prediction_exactly_once(api: Api) -> None:
    symbols = ["AAA", "BBB", "CCC", "DDD", "EEE"]
    ids = await _store(
        api.runtime, [(s, day, v) for s in symbols for day in (EARLIER, DAY) for v in ("4", "5")]
    )
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    added: list[int] = []
    while True:
        params: dict[str, Any] = {"limit": 7} | ({"cursor": cursor} if cursor else {})
        page = (await api.get("/v1/predictions", **params)).json()
        seen += page["items"]
        pages += 1
        if pages == 2:  # a prediction stored mid-way shows up on a later page
            added = await _store(api.runtime, [("FFF", DAY, "5")])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert len(ids) + len(added) == 21
    assert pages == 3
    keys = [(p["symbol"], p["as_of"], p["model_version"]) for p in seen]
    assert len(keys) == len(set(keys)) == 21
    assert set(keys) == {
        (s, day.isoformat(), v) for s in symbols for day in (EARLIER, DAY) for v in ("4", "5")
    } | {("FFF", DAY.isoformat(), "5")}


async def test_listing_filters_by_day_and_symbols(api: Api) -> None:
    await _store(
        api.runtime,
        [(s, day, "5") for s in ("AAA", "BBB", "CCC") for day in (EARLIER, DAY)],
    )
    response = await api.get("/v1/predictions", as_of=DAY.isoformat(), symbols="aaa, CCC")
    everything = await api.get("/v1/predictions")

    assert response.status_code == 200
    page = response.json()
    assert sorted((p["symbol"], p["as_of"]) for p in page["items"]) == [
        ("AAA", DAY.isoformat()),
        ("CCC", DAY.isoformat()),
    ]
    assert page["next_cursor"] is None
    assert len(everything.json()["items"]) == 6


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "aWQ6eHl6"}, "cursor"),  # base64 of "id:xyz"
        ({"symbols": "AAA,b@d"}, "symbols"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"as_of": "yesterday"}, "as_of"),
    ],
)
async def test_listing_with_a_bad_parameter_is_422_naming_it(
    api: Api, params: dict[str, Any], field: str
) -> None:
    response = await api.get("/v1/predictions", **params)

    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["query", field]]


async def test_listing_filters_on_at_most_the_symbol_limit_counting_each_once(api: Api) -> None:
    at_limit = [f"S{i}" for i in range(MAX_SYMBOLS)]
    over = ",".join([*at_limit, "EXTRA"])
    repeated = ",".join([*at_limit, *(s.lower() for s in at_limit)])

    refused = await api.get("/v1/predictions", symbols=over)

    assert (await api.get("/v1/predictions", symbols=",".join(at_limit))).status_code == 200
    assert (await api.get("/v1/predictions", symbols=repeated)).status_code == 200
    assert refused.status_code == 422
    (error,) = refused.json()["detail"]
    assert error["loc"] == ["query", "symbols"]
    assert f"at most {MAX_SYMBOLS} symbols, got {MAX_SYMBOLS + 1}" in error["msg"]
    assert (await api.get("/v1/predictions", symbols=" , ")).status_code == 422


async def test_predict_scores_every_row_as_the_model_itself_does(api: Api, tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    values = rng.normal(size=(MAX_ROWS, len(FEATURE_COLUMNS)))
    rows = [
        feature_row(f"S{i}", **dict(zip(FEATURE_COLUMNS, values[i].tolist(), strict=True)))
        for i in range(MAX_ROWS)
    ]
    rows[0]["features"] |= {"sentiment_mean": None, "has_sentiment": 0.0}
    response = await api.predict(rows)

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model_name"], body["model_version"], body["horizon_days"]) == (*SERVED, 1)
    matrix = np.array(
        [
            [math.nan if (v := r["features"][c]) is None else v for c in FEATURE_COLUMNS]
            for r in rows
        ],
        dtype=np.float32,
    )
    expected = OnnxPredictor(tmp_path / "local").predict_up(matrix)
    predictions = body["predictions"]
    assert [p["symbol"] for p in predictions] == [r["symbol"] for r in rows]
    assert [p["prob_up"] for p in predictions] == pytest.approx(expected.tolist(), abs=1e-6)
    assert {p["run_id"] for p in predictions} == {None}
    assert {p["as_of"] for p in predictions} == {DAY.isoformat()}
    for p in predictions:
        assert p["signal"] == (
            "up" if p["prob_up"] >= 0.55 else "down" if p["prob_up"] <= 0.45 else "flat"
        )


async def test_predict_refuses_more_rows_than_the_limit(api: Api) -> None:
    response = await api.predict([feature_row(f"S{i}") for i in range(MAX_ROWS + 1)])

    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "rows"]
    assert f"at most {MAX_ROWS} rows" in error["msg"]


async def test_predict_names_every_missing_unknown_or_non_numeric_feature(api: Api) -> None:
    missing = feature_row()
    del missing["features"]["rsi_14"]
    unknown = feature_row(mood=1.0)
    text = feature_row(ret_1d="0.1")
    response = await api.predict([missing, unknown, text])

    assert response.status_code == 422
    errors = {tuple(e["loc"]): e["msg"] for e in response.json()["detail"]}
    # Values are checked first; the names against the model once every value is a number.
    assert list(errors) == [("body", "rows", 2, "features", "ret_1d")]
    response = await api.predict([missing, unknown])
    errors = {tuple(e["loc"]): e["msg"] for e in response.json()["detail"]}
    assert list(errors) == [
        ("body", "rows", 0, "features", "rsi_14"),
        ("body", "rows", 1, "features", "mood"),
    ]
    assert "missing feature rsi_14" in errors[("body", "rows", 0, "features", "rsi_14")]
    assert "unknown feature mood" in errors[("body", "rows", 1, "features", "mood")]


async def test_without_a_served_model_latest_and_predict_are_503(tmp_path: Path) -> None:
    async for api in serve(prediction_app(tmp_path)):  # no local folder, nothing registered
        await _store(api.runtime, [("AAA", DAY, "5")])
        latest = await api.get("/v1/predictions/AAA/latest")
        predict = await api.predict([feature_row()])
        listing = await api.get("/v1/predictions")

    assert (latest.status_code, predict.status_code) == (503, 503)
    assert latest.headers["retry-after"] == "1"
    assert "no predictor is loaded" in latest.json()["detail"]
    assert listing.status_code == 200  # stored predictions do not need a model


async def test_every_route_needs_a_live_key_and_a_reader_key_suffices(api: Api) -> None:
    await _store(api.runtime, [("AAA", DAY, "5")])
    keys = {
        "reader": api.key,
        "approver": await new_api_key(api.runtime.database, role=Role.APPROVER),
        "revoked": await new_api_key(api.runtime.database, name="leaked-reader"),
        "unknown": "msk_" + "x" * 40,
        "none": None,
    }
    async with api.runtime.transaction() as session:
        assert await revoke_key(session, "leaked-reader")
    routes = {
        "latest": ("GET", "/v1/predictions/AAA/latest", None),
        "list": ("GET", "/v1/predictions", None),
        "predict": ("POST", "/v1/predict", {"rows": [feature_row()]}),
    }
    statuses: dict[tuple[str, str], int] = {}
    details: set[str] = set()
    for route, (method, url, body) in routes.items():
        for holder, key in keys.items():
            response = await api.client.request(
                method, url, json=body, headers={"X-API-Key": key} if key else {}
            )
            statuses[(route, holder)] = response.status_code
            if response.status_code == 401:
                details.add(response.json()["detail"])

    assert statuses == {
        (route, holder): 200 if holder in {"reader", "approver"} else 401
        for route in routes
        for holder in keys
    }
    assert details == {
        "missing API key: send it in the X-API-Key header",
        "unknown or revoked API key",
    }


def test_openapi_documents_every_operation_with_errors_and_examples(tmp_path: Path) -> None:
    spec = prediction_app(tmp_path).openapi()
    operations = [
        (path, method, operation)
        for path, item in spec["paths"].items()
        if path.startswith("/v1/")
        for method, operation in item.items()
    ]
    problems: list[str] = []
    for path, method, operation in operations:
        where = f"{method.upper()} {path}"
        if not operation.get("summary"):
            problems.append(f"{where} has no summary")
        if not operation.get("description"):
            problems.append(f"{where} has no description")
        if not operation.get("security"):
            problems.append(f"{where} declares no API key")
        for status in ("401", "403", "422"):
            response = operation["responses"].get(status)
            if response is None:
                problems.append(f"{where} does not document {status}")
            elif response["content"]["application/json"]["schema"] != {
                "$ref": "#/components/schemas/ErrorRead"
            }:
                problems.append(f"{where} documents {status} without ErrorRead")
        for parameter in operation.get("parameters", []):
            if not parameter.get("description") or not (
                {"example", "examples"} & (set(parameter) | set(parameter["schema"]))
            ):
                problems.append(f"{where} parameter {parameter['name']} lacks text or example")
    for name, schema in spec["components"]["schemas"].items():
        if "example" not in schema and "examples" not in schema:
            problems.append(f"schema {name} has no example")

    assert {(path, method) for path, method, _ in operations} == {
        ("/v1/predictions/{symbol}/latest", "get"),
        ("/v1/predictions", "get"),
        ("/v1/predict", "post"),
    }
    assert problems == []
    latest = spec["paths"]["/v1/predictions/{symbol}/latest"]["get"]["responses"]
    assert {"200", "401", "403", "404", "422", "503"} <= set(latest)
    assert "503" in spec["paths"]["/v1/predict"]["post"]["responses"]
    assert f"At most {MAX_ROWS} rows" in spec["paths"]["/v1/predict"]["post"]["description"]
    assert spec["components"]["schemas"]["PredictRequest"]["properties"]["rows"]["maxItems"] == (
        MAX_ROWS
    )
