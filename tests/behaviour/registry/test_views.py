"""The registry's routes: keys and roles, and every route documented with its errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketsense.common.app import create_app
from marketsense.common.runtime import Runtime
from marketsense.registry.app import create_component
from marketsense.registry.config import RegistrySettings
from marketsense.registry.pagination import encode_cursor
from tests.gate_support import add_outcome_set, weighted_predictor
from tests.registry_support import Registry, with_versions

MODEL = "baseline-predictor"


async def test_requests_without_a_key_or_with_a_revoked_one_are_unauthorised(
    registry: Registry,
) -> None:
    assert (await registry.create_model(MODEL)).status_code == 201

    no_key = await registry.api.get("/v1/models")
    revoked = await registry.api.get("/v1/models", headers=registry.key("revoked"))
    wrong = await registry.api.get("/v1/models", headers={"X-API-Key": "msk_" + "x" * 40})
    revoked_promote = await registry.promote(MODEL, 1, holder="revoked")

    assert no_key.status_code == 401
    assert "X-API-Key" in no_key.json()["detail"]
    assert revoked.status_code == 401
    assert wrong.status_code == 401
    assert revoked_promote.status_code == 401


async def test_roles_bound_what_each_key_may_do(registry: Registry, tmp_path: Path) -> None:
    await add_outcome_set(registry.runtime)
    folder = weighted_predictor(tmp_path / "artifact", skill=3)
    second = weighted_predictor(tmp_path / "second", skill=3)

    reader_creates = await registry.create_model(MODEL, holder="reader")
    assert (await registry.create_model(MODEL)).status_code == 201
    reader_pushes = await registry.push(MODEL, folder, holder="reader")
    assert (await registry.push(MODEL, folder)).status_code == 201
    assert (await registry.push(MODEL, second)).status_code == 201
    publisher_production = await registry.promote(MODEL, 1, holder="publisher")
    publisher_staging = await registry.promote(MODEL, 1, alias="staging", holder="publisher")
    reader_staging = await registry.promote(MODEL, 2, alias="staging", holder="reader")
    approver_production = await registry.promote(MODEL, 1, holder="approver")
    assert (await registry.promote(MODEL, 2, holder="approver")).status_code == 200
    publisher_rollback = await registry.api.post(
        f"/v1/models/{MODEL}/rollback", json={"reason": "x"}, headers=registry.key("publisher")
    )
    approver_rollback = await registry.api.post(
        f"/v1/models/{MODEL}/rollback", json={"reason": "x"}, headers=registry.key("approver")
    )
    approver_creates = await registry.create_model("approved-model", holder="approver")
    approver_pushes = await registry.push("approved-model", folder, holder="approver")
    reader_reads = await registry.api.get(
        f"/v1/models/{MODEL}/versions/1/files/model.onnx", headers=registry.key("reader")
    )

    assert reader_creates.status_code == 403
    assert "publisher" in reader_creates.json()["detail"]
    assert reader_pushes.status_code == 403
    assert publisher_production.status_code == 403
    assert "approver" in publisher_production.json()["detail"]
    assert publisher_staging.status_code == 200
    assert reader_staging.status_code == 403
    assert approver_production.status_code == 200
    assert publisher_rollback.status_code == 403
    assert approver_rollback.status_code == 200
    assert approver_creates.status_code == 201
    assert approver_pushes.status_code == 201
    assert reader_reads.status_code == 200
    history = await registry.api.get(
        f"/v1/models/{MODEL}/aliases/production/history", headers=registry.key("reader")
    )
    assert [c["to_version"] for c in history.json()["items"]] == [1, 2, 1]


def test_every_route_is_documented_with_a_summary_tags_and_its_errors(tmp_path: Path) -> None:
    settings = RegistrySettings(home=tmp_path, log_json=False)
    runtime = Runtime(settings, service="registry")
    spec = create_app(runtime, [create_component(runtime, settings)], title="registry").openapi()

    operations = [
        (path, method, op)
        for path, item in spec["paths"].items()
        if path.startswith("/v1/")
        for method, op in item.items()
    ]
    documented = {(method.upper(), path) for path, method, _ in operations}
    assert {
        ("GET", "/v1/models"),
        ("GET", "/v1/models/{name}/versions"),
        ("GET", "/v1/models/{name}/aliases/{alias}/history"),
        ("POST", "/v1/models/{name}/versions/{version}/archive"),
        ("DELETE", "/v1/models/{name}/aliases/{alias}"),
        ("PATCH", "/v1/models/{name}"),
        ("PATCH", "/v1/models/{name}/versions/{version}"),
        ("GET", "/v1/models/{name}/compare"),
        ("GET", "/v1/models/{name}/versions/{version}/bundle"),
        ("GET", "/v1/audit"),
        ("GET", "/v1/models/{name}/serving"),
        ("POST", "/v1/evaluation-sets"),
        ("GET", "/v1/evaluation-sets"),
        ("POST", "/v1/evaluation-sets/predictor/from-runs"),
    } <= documented
    error_schemas = [
        {"$ref": "#/components/schemas/ErrorRead"},
        {"$ref": "#/components/schemas/HTTPValidationError"},
    ]
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        assert op.get("summary"), where
        assert op.get("tags"), where
        assert {"401", "403"} <= set(op["responses"]), where
        for code, response in op["responses"].items():
            if code.startswith(("4", "5")):
                schema = response["content"]["application/json"]["schema"]
                assert schema in error_schemas, (where, code)
    push = spec["paths"]["/v1/models/{name}/versions"]["post"]
    assert set(push["requestBody"]["content"]["multipart/form-data"]["schema"]["required"]) == {
        "manifest",
        "bundle",
    }
    assert "413" in push["responses"]
    for name, schema in spec["components"]["schemas"].items():
        if name in {"HTTPValidationError", "ValidationError"}:
            continue
        assert schema.get("examples"), f"schema {name} has no example"


@pytest.mark.parametrize("version", [2**31, 2**63, 10**30])
async def test_a_version_number_beyond_what_the_database_holds_is_refused(
    registry: Registry, tmp_path: Path, version: int
) -> None:
    await with_versions(registry, tmp_path, MODEL, 0.6)
    reader = registry.key("reader")

    answers = [
        await registry.api.get(f"/v1/models/{MODEL}/versions/{version}", headers=reader),
        await registry.api.get(
            f"/v1/models/{MODEL}/versions/{version}/files/model.onnx", headers=reader
        ),
        await registry.promote(MODEL, version, alias="staging", holder="publisher"),
    ]

    assert [a.status_code for a in answers] == [422, 422, 422]
    for answer in answers:
        assert "less than or equal to 2147483647" in answer.text


@pytest.mark.parametrize(
    ("time", "message"),
    [
        ("0001-01-01T00:00:00+01:00", "outside years 1 to 9999"),
        ("9999-12-31T23:59:59-01:00", "outside years 1 to 9999"),
        ("0", "ISO 8601"),
        ("1764081000", "ISO 8601"),
    ],
)
async def test_a_time_that_is_not_iso_or_leaves_the_calendar_in_utc_is_refused(
    registry: Registry, time: str, message: str
) -> None:
    assert (await registry.create_model(MODEL)).status_code == 201

    answer = await registry.api.get(
        f"/v1/models/{MODEL}/aliases/production/at",
        params={"time": time},
        headers=registry.key("reader"),
    )

    assert answer.status_code == 422, answer.text
    assert message in answer.text


@pytest.mark.parametrize(
    "cursor",
    [str(2**63), "9" * 19, "²", "%C2%B2", "0", "1" * 5000, encode_cursor(2**63), encode_cursor(0)],
)
@pytest.mark.parametrize(
    "url", ["/v1/audit", f"/v1/models/{MODEL}/versions", f"/v1/models/{MODEL}/aliases/x/history"]
)
async def test_a_cursor_beyond_a_row_id_or_not_one_is_refused_in_plain_words(
    registry: Registry, cursor: str, url: str
) -> None:
    assert (await registry.create_model(MODEL)).status_code == 201
    answer = await registry.api.get(url, params={"cursor": cursor}, headers=registry.key("reader"))

    assert answer.status_code == 422, answer.text
    assert "cursor" in answer.text
    assert "int()" not in answer.text
    assert "digits" not in answer.text


async def test_a_model_cursor_that_names_no_model_is_refused(registry: Registry) -> None:
    answer = await registry.api.get(
        "/v1/models", params={"cursor": encode_cursor(7)}, headers=registry.key("reader")
    )

    assert answer.status_code == 422
    assert "cursor" in answer.text


def test_the_documented_schemas_state_the_bounds_and_that_force_needs_a_reason(
    tmp_path: Path,
) -> None:
    settings = RegistrySettings(home=tmp_path, log_json=False)
    runtime = Runtime(settings, service="registry")
    spec = create_app(runtime, [create_component(runtime, settings)], title="registry").openapi()
    update = spec["components"]["schemas"]["AliasUpdate"]
    [version] = [
        p
        for p in spec["paths"]["/v1/models/{name}/versions/{version}"]["get"]["parameters"]
        if p["name"] == "version"
    ]
    [cursor] = [p for p in spec["paths"]["/v1/audit"]["get"]["parameters"] if p["name"] == "cursor"]

    assert version["schema"]["maximum"] == 2**31 - 1
    assert update["properties"]["version"]["maximum"] == 2**31 - 1
    assert update["if"] == {"properties": {"force": {"const": True}}, "required": ["force"]}
    assert update["then"]["properties"]["reason"] == {"minLength": 1}
    assert cursor["schema"]["anyOf"][0]["maxLength"] == 200
