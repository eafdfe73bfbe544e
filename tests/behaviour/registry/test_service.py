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
    assert [(m["name"], m["kind"], m["latest_version"]) for m in listed.json()] == [
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
    moves = [(c["action"], c["from_version"], c["to_version"]) for c in history.json()]
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


async def test_audit_pages_cover_every_change_once_newest_first(
    registry: Registry, tmp_path: Path
) -> None:
    await with_versions(registry, tmp_path, MODEL, 0.6, 0.6, 0.6)
    assert (await registry.create_model("other-model")).status_code == 201
    assert (await registry.push("other-model", tmp_path / "v1")).status_code == 201
    for number in (1, 2, 3, 1, 2, 3, 1):
        assert (await registry.promote(MODEL, number, alias="staging")).status_code == 200
    assert (await registry.promote("other-model", 1, alias="staging")).status_code == 200

    async def pages(params: dict[str, str]) -> list[list[dict[str, object]]]:
        found: list[list[dict[str, object]]] = []
        cursor: str | None = None
        while True:
            query = params | ({"cursor": cursor} if cursor else {})
            page = await registry.api.get("/v1/audit", params=query, headers=registry.key("reader"))
            assert page.status_code == 200, page.text
            found.append(page.json()["items"])
            cursor = page.json()["next_cursor"]
            if cursor is None:
                return found

    everything = await pages({"limit": "3"})
    only_model = await pages({"limit": "2", "model": MODEL})

    assert [len(p) for p in everything] == [3, 3, 2]
    ids = [int(str(e["id"])) for page in everything for e in page]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == 8
    assert everything[0][0]["model_name"] == "other-model"
    flat = [e for page in only_model for e in page]
    assert [len(p) for p in only_model] == [2, 2, 2, 1]
    assert {e["model_name"] for e in flat} == {MODEL}
    assert [e["to_version"] for e in flat] == [1, 3, 2, 1, 3, 2, 1]
    bad = await registry.api.get(
        "/v1/audit", params={"cursor": "abc"}, headers=registry.key("reader")
    )
    assert bad.status_code == 422
    assert "cursor" in str(bad.json()["detail"])
