"""The evaluation set routes: an approver adds sets as raw bytes, anyone with a key lists,
reads and downloads them; every refusal names what to fix."""

from __future__ import annotations

import hashlib

import pytest

from marketsense.models.evaluation import MAX_SET_BYTES
from tests.evaluation_set_support import predictor_parquet, sentiment_csv
from tests.registry_support import Registry

CSV = {"Content-Type": "text/csv"}
PARQUET = {"Content-Type": "application/vnd.apache.parquet"}


async def _add(
    registry: Registry, kind: str, data: bytes, *, name: str = "set", holder: str = "approver"
) -> dict[str, object]:
    response = await registry.api.post(
        "/v1/evaluation-sets",
        params={"kind": kind, "name": name},
        content=data,
        headers=(CSV if kind == "sentiment" else PARQUET) | registry.key(holder),
    )
    return {"status": response.status_code, **response.json()}


async def test_a_set_is_added_then_the_same_bytes_answer_200_with_the_stored_set(
    registry: Registry,
) -> None:
    data = sentiment_csv()

    first = await _add(registry, "sentiment", data, name="desk-texts")
    again = await _add(registry, "sentiment", data, name="other-name")

    assert first["status"] == 201
    assert again["status"] == 200
    assert again["id"] == first["id"]
    assert first["sha256"] == hashlib.sha256(data).hexdigest()
    assert (first["rows"], first["active"], first["created_by"]) == (24, True, "approver-key")


async def test_the_data_route_returns_the_bytes_with_their_checksum(registry: Registry) -> None:
    data = predictor_parquet()
    added = await _add(registry, "predictor", data)

    response = await registry.api.get(
        f"/v1/evaluation-sets/{added['id']}/data", headers=registry.key("reader")
    )
    read = await registry.api.get(
        f"/v1/evaluation-sets/{added['id']}", headers=registry.key("reader")
    )

    assert response.status_code == 200
    assert response.content == data
    assert response.headers["X-Checksum-Sha256"] == hashlib.sha256(data).hexdigest()
    assert response.headers["Content-Type"] == "application/vnd.apache.parquet"
    assert read.json()["kind"] == "predictor"


async def test_listing_pages_by_cursor_filters_by_kind_and_marks_the_active_sets(
    registry: Registry,
) -> None:
    ids = [
        (await _add(registry, "sentiment", sentiment_csv(prefix=f"t{i}"), name=f"s{i}"))["id"]
        for i in range(3)
    ]
    await _add(registry, "predictor", predictor_parquet())
    reader = registry.key("reader")

    first = (
        await registry.api.get(
            "/v1/evaluation-sets", params={"kind": "sentiment", "limit": 2}, headers=reader
        )
    ).json()
    second = (
        await registry.api.get(
            "/v1/evaluation-sets",
            params={"kind": "sentiment", "limit": 2, "cursor": first["next_cursor"]},
            headers=reader,
        )
    ).json()
    everything = (await registry.api.get("/v1/evaluation-sets", headers=reader)).json()

    assert [item["id"] for item in first["items"]] == [ids[2], ids[1]]
    assert [item["active"] for item in first["items"]] == [True, False]
    assert [item["id"] for item in second["items"]] == [ids[0]]
    assert second["next_cursor"] is None
    assert {item["kind"] for item in everything["items"]} == {"sentiment", "predictor"}


@pytest.mark.parametrize("holder", ["reader", "publisher"])
async def test_only_an_approver_adds_a_set(registry: Registry, holder: str) -> None:
    refused = await _add(registry, "sentiment", sentiment_csv(), holder=holder)
    listed = await registry.api.get("/v1/evaluation-sets", headers=registry.key("reader"))

    assert refused["status"] == 403
    assert listed.json()["items"] == []


async def test_an_unusable_set_is_a_422_saying_what_is_wrong(registry: Registry) -> None:
    bad_label = sentiment_csv().replace(b"neutral", b"meh", 1)

    refused = await _add(registry, "sentiment", bad_label)
    short = await _add(registry, "sentiment", sentiment_csv(rows=5))
    not_parquet = await _add(registry, "predictor", b"PAR1 not really")

    assert refused["status"] == 422
    assert "label 'meh' is not one of negative, neutral, positive" in str(refused["detail"])
    assert "it needs at least 20" in str(short["detail"])
    assert "not a readable Parquet file" in str(not_parquet["detail"])


async def test_a_body_of_the_wrong_type_is_refused_naming_the_content_type(
    registry: Registry,
) -> None:
    response = await registry.api.post(
        "/v1/evaluation-sets",
        params={"kind": "predictor", "name": "x"},
        content=sentiment_csv(),
        headers=CSV | registry.key("approver"),
    )

    assert response.status_code == 415
    assert "application/vnd.apache.parquet" in response.json()["detail"]


async def test_an_oversize_set_is_refused_before_it_is_read(registry: Registry) -> None:
    response = await registry.api.post(
        "/v1/evaluation-sets",
        params={"kind": "sentiment", "name": "huge"},
        content=b"x" * (MAX_SET_BYTES + 1),
        headers=CSV | registry.key("approver"),
    )

    assert response.status_code == 413
    assert "evaluation set limit" in response.json()["detail"]


async def test_an_unknown_set_is_a_404_naming_the_list_route(registry: Registry) -> None:
    response = await registry.api.get("/v1/evaluation-sets/999", headers=registry.key("reader"))

    assert response.status_code == 404
    assert "GET /v1/evaluation-sets" in response.json()["detail"]
