"""The registry's audit log: entries written with the change they record, refusals kept on
their own, and read back newest first a page at a time, by model and by action."""

from __future__ import annotations

import pytest

from marketsense.registry import audit
from marketsense.registry.pagination import encode_cursor
from tests.registry_support import Registry


async def write(
    registry: Registry, entries: list[tuple[str, audit.AuditAction, int | None]]
) -> None:
    """Record (model, action, version) entries in one transaction, in order."""
    async with registry.runtime.transaction() as session:
        for model, action, version in entries:
            audit.record(
                session,
                model_name=model,
                action=action,
                actor="alice",
                version=version,
                alias="production" if action in ("promote", "rollback") else None,
                reason=f"{action} {version}",
            )


async def pages(registry: Registry, params: dict[str, str]) -> list[list[dict[str, object]]]:
    """Every page of GET /v1/audit with `params`, following the cursors."""
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


async def test_pages_cover_every_entry_once_newest_first_by_model_and_action(
    registry: Registry,
) -> None:
    await write(
        registry,
        [
            ("finbert", "push", 1),
            ("finbert", "push", 2),
            ("finbert", "promote", 1),
            ("predictor", "push", 1),
            ("finbert", "promote", 2),
            ("finbert", "rollback", 1),
            ("finbert", "archive", 2),
            ("predictor", "description_edited", None),
        ],
    )

    everything = await pages(registry, {"limit": "3"})
    finbert = await pages(registry, {"limit": "2", "model": "finbert"})
    pushes = await pages(registry, {"action": "push"})

    assert [len(p) for p in everything] == [3, 3, 2]
    flat = [e for page in everything for e in page]
    ids = [int(str(e["id"])) for e in flat]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == 8
    assert flat[0]["action"] == "description_edited"
    assert [len(p) for p in finbert] == [2, 2, 2]
    assert [e["action"] for page in finbert for e in page] == [
        "archive",
        "rollback",
        "promote",
        "promote",
        "push",
        "push",
    ]
    # Alias moves keep the fields the alias-change log had; other entries have no target.
    moves = {e["action"]: e for page in finbert for e in page}
    assert (moves["rollback"]["alias"], moves["rollback"]["to_version"]) == ("production", 1)
    assert moves["archive"]["to_version"] is None
    assert moves["archive"]["reason"] == "archive 2"
    assert moves["archive"]["actor"] == "alice"
    assert [(e["model_name"], e["version"]) for e in pushes[0]] == [
        ("predictor", 1),
        ("finbert", 2),
        ("finbert", 1),
    ]


async def test_a_refusal_is_kept_when_the_change_it_refused_rolled_back(
    registry: Registry,
) -> None:
    async def refused_promotion() -> None:
        async with registry.runtime.transaction() as session:
            audit.record(session, model_name="finbert", action="promote", actor="bob", version=3)
            raise RuntimeError("the gate refused")

    with pytest.raises(RuntimeError):
        await refused_promotion()
    await audit.record_refusal(
        registry.runtime,
        model_name="never-registered",
        action="promote_refused",
        actor="bob",
        version=3,
        alias="production",
        detail="version 3 has heldout_macro_f1 0.17, below production's 0.815",
    )

    (entries,) = await pages(registry, {})

    assert [(e["model_name"], e["action"]) for e in entries] == [
        ("never-registered", "promote_refused")
    ]
    assert "0.17" in str(entries[0]["detail"])


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"action": "deleted"}, "action"),
        ({"model": "Not Valid"}, "model"),
        ({"limit": "501"}, "limit"),
        ({"cursor": encode_cursor("a name")}, "cursor"),
        ({"cursor": encode_cursor(0)}, "cursor"),
    ],
)
async def test_a_filter_or_cursor_it_cannot_use_is_refused_naming_it(
    registry: Registry, params: dict[str, str], word: str
) -> None:
    answer = await registry.api.get("/v1/audit", params=params, headers=registry.key("reader"))

    assert answer.status_code == 422
    assert word in answer.text
