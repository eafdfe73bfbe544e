"""A version's life after its push: archived, an alias deleted, descriptions edited, the whole
bundle downloaded as one gzip tar."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import tarfile
from pathlib import Path

import httpx
from sqlalchemy import select

from marketsense.common.db.models import RegistryAudit
from tests.registry_support import Registry, with_versions

MODEL = "baseline-predictor"


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    """The bytes of a regular file member."""
    extracted = tar.extractfile(member)
    assert extracted is not None, member.name
    return extracted.read()


async def audit_actions(registry: Registry) -> list[tuple[str, int | None, str | None, str]]:
    """(action, version, alias, reason) of every audit entry, oldest first."""
    async with registry.runtime.database.session() as session:
        rows = await session.scalars(select(RegistryAudit).order_by(RegistryAudit.id))
        return [(r.action, r.version, r.alias, r.reason) for r in rows]


async def archive(
    registry: Registry, version: int, *, holder: str = "approver", **body: str
) -> httpx.Response:
    """Ask to archive a version of MODEL."""
    return await registry.api.post(
        f"/v1/models/{MODEL}/versions/{version}/archive",
        json=body or {"reason": "claimed metrics were inflated"},
        headers=registry.key(holder),
    )


async def test_an_aliased_version_is_not_archived_and_an_archived_one_stays_readable(
    registry: Registry, tmp_path: Path
) -> None:
    await with_versions(registry, tmp_path, MODEL, 0.6, 0.65, 0.7)
    assert (await registry.promote(MODEL, 1)).status_code == 200
    assert (await registry.promote(MODEL, 2, alias="staging")).status_code == 200

    production = await archive(registry, 1)
    staging = await archive(registry, 2)
    by_publisher = await archive(registry, 3, holder="publisher")
    blank = await archive(registry, 3, reason="")
    archived = await archive(registry, 3)
    again = await archive(registry, 3)

    assert production.status_code == 409
    assert "rollback" in production.json()["detail"]
    assert "production" in production.json()["detail"]
    assert staging.status_code == 409
    assert "DELETE /v1/models/baseline-predictor/aliases/staging" in staging.json()["detail"]
    assert by_publisher.status_code == 403
    assert blank.status_code == 422
    assert archived.status_code == 200, archived.text
    assert archived.json()["archived_by"] == "approver-key"
    assert archived.json()["archive_reason"] == "claimed metrics were inflated"
    assert again.status_code == 409
    assert "archived" in again.json()["detail"]
    shown = await registry.api.get(f"/v1/models/{MODEL}/versions/3", headers=registry.key("reader"))
    assert shown.json()["archived_at"] == archived.json()["archived_at"]
    assert dt.datetime.fromisoformat(shown.json()["archived_at"]).tzinfo is not None
    others = await registry.api.get(
        f"/v1/models/{MODEL}/versions/2", headers=registry.key("reader")
    )
    assert others.json()["archived_at"] is None
    graph = await registry.api.get(
        f"/v1/models/{MODEL}/versions/3/files/model.onnx", headers=registry.key("reader")
    )
    assert graph.status_code == 200
    assert [a for a in await audit_actions(registry) if a[0] == "archive"] == [
        ("archive", 3, None, "claimed metrics were inflated")
    ]


async def test_an_alias_is_deleted_into_its_history_but_production_is_not(
    registry: Registry, tmp_path: Path
) -> None:
    await with_versions(registry, tmp_path, MODEL, 0.6, 0.65)
    assert (await registry.promote(MODEL, 1)).status_code == 200
    moved = await registry.promote(MODEL, 2, alias="staging")
    assert moved.status_code == 200

    async def delete(alias: str, body: dict[str, str], holder: str = "publisher") -> httpx.Response:
        return await registry.api.request(
            "DELETE",
            f"/v1/models/{MODEL}/aliases/{alias}",
            json=body,
            headers=registry.key(holder),
        )

    production = await delete("production", {"reason": "retire"}, holder="approver")
    no_reason = await delete("staging", {})
    by_reader = await delete("staging", {"reason": "trial over"}, holder="reader")
    deleted = await delete("staging", {"reason": "trial over"})
    twice = await delete("staging", {"reason": "trial over"})

    assert production.status_code == 409
    assert "rollback" in production.json()["detail"]
    assert no_reason.status_code == 422
    assert by_reader.status_code == 403
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["action"] == "delete"
    assert (deleted.json()["from_version"], deleted.json()["to_version"]) == (2, None)
    assert twice.status_code == 404
    assert "staging" in twice.json()["detail"]
    unset = await registry.api.get(
        f"/v1/models/{MODEL}/aliases/staging", headers=registry.key("reader")
    )
    assert unset.status_code == 404
    model = await registry.api.get(f"/v1/models/{MODEL}", headers=registry.key("reader"))
    assert model.json()["aliases"] == {"production": 1}
    history = await registry.api.get(
        f"/v1/models/{MODEL}/aliases/staging/history", headers=registry.key("reader")
    )
    assert [(c["action"], c["to_version"]) for c in history.json()["items"]] == [
        ("delete", None),
        ("promote", 2),
    ]

    async def staging_at(time: str) -> int | None:
        answer = await registry.api.get(
            f"/v1/models/{MODEL}/aliases/staging/at",
            params={"time": time},
            headers=registry.key("reader"),
        )
        version: int | None = answer.json()["version"]
        return version

    assert await staging_at(moved.json()["at"]) == 2
    assert await staging_at(deleted.json()["at"]) is None
    assert ("alias_deleted", None, "staging", "trial over") in await audit_actions(registry)
    # A deleted alias can be set again, from nothing.
    again = await registry.promote(MODEL, 1, alias="staging")
    assert again.status_code == 200
    assert again.json()["from_version"] is None


async def test_descriptions_are_edited_and_the_old_text_is_kept_in_the_audit_log(
    registry: Registry, tmp_path: Path
) -> None:
    await with_versions(registry, tmp_path, MODEL, 0.6)
    body = {"description": "logistic regression, 2026 features", "reason": "say what it is"}

    model = await registry.api.patch(
        f"/v1/models/{MODEL}", json=body, headers=registry.key("publisher")
    )
    version = await registry.api.patch(
        f"/v1/models/{MODEL}/versions/1", json=body, headers=registry.key("publisher")
    )
    unchanged = await registry.api.patch(
        f"/v1/models/{MODEL}/versions/1", json=body, headers=registry.key("publisher")
    )
    by_reader = await registry.api.patch(
        f"/v1/models/{MODEL}", json=body, headers=registry.key("reader")
    )
    typo = await registry.api.patch(
        f"/v1/models/{MODEL}", json={"descripton": "x"}, headers=registry.key("publisher")
    )
    unknown = await registry.api.patch(
        f"/v1/models/{MODEL}/versions/9", json=body, headers=registry.key("publisher")
    )

    assert model.status_code == 200, model.text
    assert model.json()["description"] == body["description"]
    assert version.json()["description"] == body["description"]
    assert unchanged.status_code == 200
    assert by_reader.status_code == 403
    assert typo.status_code == 422
    assert "descripton" in typo.text
    assert unknown.status_code == 404
    shown = await registry.api.get(f"/v1/models/{MODEL}", headers=registry.key("reader"))
    assert shown.json()["description"] == body["description"]
    async with registry.runtime.database.session() as session:
        edits = list(
            await session.scalars(
                select(RegistryAudit).where(RegistryAudit.action == "description_edited")
            )
        )
    # The unchanged edit left no entry; each entry keeps what it replaced.
    assert [(e.version, e.reason) for e in edits] == [
        (None, "say what it is"),
        (1, "say what it is"),
    ]
    assert "predictor for tests" in edits[0].detail
    assert edits[1].detail == "previous description: ''"


async def test_the_bundle_downloads_every_file_with_its_manifest_and_refuses_damage(
    registry: Registry, tmp_path: Path
) -> None:
    await with_versions(registry, tmp_path, MODEL, 0.6)
    files = (
        await registry.api.get(f"/v1/models/{MODEL}/versions/1", headers=registry.key("reader"))
    ).json()["files"]

    bundle = await registry.api.get(
        f"/v1/models/{MODEL}/versions/1/bundle", headers=registry.key("reader")
    )

    assert bundle.status_code == 200, bundle.text
    assert bundle.headers["content-type"] == "application/gzip"
    assert int(bundle.headers["content-length"]) == len(bundle.content)
    assert "baseline-predictor-1.tar.gz" in bundle.headers["content-disposition"]
    with tarfile.open(fileobj=io.BytesIO(bundle.content), mode="r:gz") as tar:
        members = {m.name: _read(tar, m) for m in tar.getmembers()}
    assert sorted(members) == sorted(f["name"] for f in files) == ["manifest.json", "model.onnx"]
    for file in files:
        assert hashlib.sha256(members[file["name"]]).hexdigest() == file["sha256"]
    assert json.loads(members["manifest.json"])["version"] == "1"
    missing = await registry.api.get(
        f"/v1/models/{MODEL}/versions/2/bundle", headers=registry.key("reader")
    )
    assert missing.status_code == 404

    await registry.runtime.store.put(f"models/{MODEL}/1/model.onnx", b"not the graph")
    damaged = await registry.api.get(
        f"/v1/models/{MODEL}/versions/1/bundle", headers=registry.key("reader")
    )
    assert damaged.status_code == 500
    assert "model.onnx" in damaged.json()["detail"]
    assert "sha256" in damaged.json()["detail"]


async def test_production_does_not_roll_back_to_an_archived_version(
    registry: Registry, tmp_path: Path
) -> None:
    await with_versions(registry, tmp_path, MODEL, 0.6, 0.65)
    assert (await registry.promote(MODEL, 1)).status_code == 200
    assert (await registry.promote(MODEL, 2)).status_code == 200
    assert (await archive(registry, 1)).status_code == 200

    rolled = await registry.api.post(
        f"/v1/models/{MODEL}/rollback",
        json={"reason": "v2 drifts"},
        headers=registry.key("approver"),
    )

    assert rolled.status_code == 409
    assert "archived" in rolled.json()["detail"]
    assert "claimed metrics were inflated" in rolled.json()["detail"]
    model = await registry.api.get(f"/v1/models/{MODEL}", headers=registry.key("reader"))
    assert model.json()["aliases"] == {"production": 2}
