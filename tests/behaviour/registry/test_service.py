"""The registry's reads: models and versions, stored files, an alias's history and the version
it named at a moment, and the audit log a page at a time."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from tests.artifacts import small_predictor
from tests.registry_support import Registry, with_versions

MODEL = "baseline-predictor"


async def test_models_are_listed_and_unknown_names_are_not_found(registry: Registry) -> None:
    assert (await registry.create_model("b-sentiment", kind="sentiment")).status_code == 201
    assert (await registry.create_model("a-predictor")).status_code == 201
    duplicate = await registry.create_model("a-predictor")
    bad_name = await registry.create_model("Not Valid")

    listed = await registry.api.get("/v1/models", headers=registry.key("reader"))
    unknown = await registry.api.get("/v1/models/nope", headers=registry.key("reader"))
    unknown_versions = await registry.api.get(
        "/v1/models/nope/versions", headers=registry.key("reader")
    )

    assert duplicate.status_code == 409
    assert "a-predictor" in duplicate.json()["detail"]
    assert bad_name.status_code == 422
    assert [(m["name"], m["kind"], m["latest_version"]) for m in listed.json()["items"]] == [
        ("a-predictor", "predictor", None),
        ("b-sentiment", "sentiment", None),
    ]
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "no model named 'nope'"
    assert unknown_versions.status_code == 404


async def test_download_returns_the_uploaded_bytes_with_their_checksum(
    registry: Registry, tmp_path: Path
) -> None:
    folder = small_predictor(tmp_path / "artifact")
    await with_versions(registry, tmp_path, MODEL, 0.6)
    pushed = await registry.push(MODEL, folder)
    number = pushed.json()["version"]
    files = {f["name"]: f for f in pushed.json()["files"]}
    base = f"/v1/models/{MODEL}/versions/{number}/files"

    onnx = await registry.api.get(f"{base}/model.onnx", headers=registry.key("reader"))
    manifest = await registry.api.get(f"{base}/manifest.json", headers=registry.key("reader"))
    missing = await registry.api.get(f"{base}/tokenizer.json", headers=registry.key("reader"))

    assert onnx.status_code == 200
    assert onnx.content == (folder / "model.onnx").read_bytes()
    assert onnx.headers["content-type"] == "application/octet-stream"
    assert onnx.headers["x-checksum-sha256"] == files["model.onnx"]["sha256"]
    assert json.loads(manifest.content) == pushed.json()["manifest"]
    assert manifest.headers["x-checksum-sha256"] == files["manifest.json"]["sha256"]
    assert missing.status_code == 404
    assert "tokenizer.json" in missing.json()["detail"]


async def test_history_and_point_in_time_lookups_follow_every_move(
    registry: Registry, tmp_path: Path
) -> None:
    await with_versions(registry, tmp_path, MODEL, 0.6, 0.65, 0.7)
    before_any = dt.datetime.now(dt.UTC)
    times: list[dt.datetime] = []
    for number in (1, 2, 3):
        moved = await registry.promote(MODEL, number)
        assert moved.status_code == 200, moved.text
        times.append(dt.datetime.fromisoformat(moved.json()["at"]))
    rolled = await registry.api.post(
        f"/v1/models/{MODEL}/rollback",
        json={"reason": "v3 drifts"},
        headers=registry.key("approver"),
    )
    times.append(dt.datetime.fromisoformat(rolled.json()["at"]))
    assert times == sorted(times)

    async def version_at(time: dt.datetime) -> int | None:
        answer = await registry.api.get(
            f"/v1/models/{MODEL}/aliases/production/at",
            params={"time": time.isoformat()},
            headers=registry.key("reader"),
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_name"] == MODEL
        version: int | None = answer.json()["version"]
        return version

    tick = dt.timedelta(microseconds=1)
    assert await version_at(before_any - dt.timedelta(seconds=1)) is None
    assert await version_at(times[0]) == 1
    assert await version_at(times[1] - tick) == 1
    assert await version_at(times[1]) == 2
    assert await version_at(times[2] - tick) == 2
    assert await version_at(times[2]) == 3
    assert await version_at(times[3]) == 2
    assert await version_at(dt.datetime.now(dt.UTC) + dt.timedelta(days=1)) == 2
    # The same instant written in another timezone names the same version.
    berlin = dt.timezone(dt.timedelta(hours=2))
    assert await version_at(times[1].astimezone(berlin)) == 2
    assert await version_at((times[1] - tick).astimezone(berlin)) == 1

    history = await registry.api.get(
        f"/v1/models/{MODEL}/aliases/production/history", headers=registry.key("reader")
    )
    moves = [(c["action"], c["from_version"], c["to_version"]) for c in history.json()["items"]]
    assert moves == [
        ("rollback", 3, 2),
        ("promote", 2, 3),
        ("promote", 1, 2),
        ("promote", None, 1),
    ]
    naive = await registry.api.get(
        f"/v1/models/{MODEL}/aliases/production/at",
        params={"time": "2026-11-25T14:30:00"},
        headers=registry.key("reader"),
    )
    assert naive.status_code == 422
    assert "timezone" in naive.json()["detail"]


async def every_page(registry: Registry, url: str, limit: int) -> list[list[dict[str, object]]]:
    """Every page of a paginated list route, following the cursors."""
    found: list[list[dict[str, object]]] = []
    cursor: str | None = None
    while True:
        params = {"limit": str(limit)} | ({"cursor": cursor} if cursor else {})
        page = await registry.api.get(url, params=params, headers=registry.key("reader"))
        assert page.status_code == 200, page.text
        found.append(page.json()["items"])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return found


async def test_versions_models_and_history_come_a_page_at_a_time(
    registry: Registry, tmp_path: Path
) -> None:
    await with_versions(registry, tmp_path, MODEL, 0.6, 0.6, 0.6, 0.6, 0.6)
    for name in ("c-model", "a-model"):
        assert (await registry.create_model(name)).status_code == 201
    for number in (1, 2, 3, 4, 5, 1):
        assert (await registry.promote(MODEL, number, alias="staging")).status_code == 200

    versions = await every_page(registry, f"/v1/models/{MODEL}/versions", 2)
    models = await every_page(registry, "/v1/models", 2)
    history = await every_page(registry, f"/v1/models/{MODEL}/aliases/staging/history", 4)
    one = await registry.api.get(
        f"/v1/models/{MODEL}/versions", params={"limit": "1"}, headers=registry.key("reader")
    )

    assert [[v["version"] for v in page] for page in versions] == [[5, 4], [3, 2], [1]]
    assert [[m["name"] for m in page] for page in models] == [
        ["a-model", "baseline-predictor"],
        ["c-model"],
    ]
    assert models[0][1]["aliases"] == {"staging": 1}
    assert models[0][1]["latest_version"] == 5
    assert [[c["to_version"] for c in page] for page in history] == [[1, 5, 4, 3], [2, 1]]
    assert [v["version"] for v in one.json()["items"]] == [5]
    for url in ("/v1/models", f"/v1/models/{MODEL}/versions"):
        refused = await registry.api.get(url, params={"limit": "0"}, headers=registry.key("reader"))
        assert refused.status_code == 422
        assert "limit" in refused.text
