"""The challenges API: listing and reading challenges, an approver's yes to a winner awaiting
approval (promotion through the registry's gate) and no to an undecided one (archived), and
the refusals: a reader's key, an unknown id, a decided challenge."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketsense.common.auth import KEY_HEADER, Role
from marketsense.common.store import ObjectStore
from tests.behaviour.monitoring.challenge_support import DAYS, harness, register, shadowed_backfill
from tests.behaviour.monitoring.market_runs import MODEL
from tests.model_registry_rows import new_api_key

pytestmark = [
    pytest.mark.usefixtures("database"),
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
    pytest.mark.parametrize("store", ["file"], indirect=True),
]


async def test_an_approver_promotes_a_winner_that_awaits_approval(
    tmp_path: Path, database_url: str, store: ObjectStore
) -> None:
    async with harness(tmp_path, database_url, store, promotion_mode="approval") as h:
        await register(h, tmp_path, champion=0.3, challenger=2.0)
        await h.loop.run_finished(await shadowed_backfill(h, flipped=True))

        answer = await h.api.get("/v1/challenges")
        assert answer.status_code == 200, answer.text
        listed = answer.json()["items"]
        assert [(c["id"], c["state"]) for c in listed] == [(1, "AWAITING_APPROVAL")]
        [alert] = h.alerts.alerts
        assert alert.key == f"challenge:{MODEL}:2:AWAITING_APPROVAL"
        assert "marketsense challenges approve 1" in alert.text
        production = await h.calls.alias(MODEL, "production")
        assert production is not None
        assert production["version"] == 1
        reader = await new_api_key(h.runtime.database, role=Role.READER)
        refused = await h.api.post(
            "/v1/challenges/1/approve", json={"reason": "yes"}, headers={KEY_HEADER: reader}
        )
        assert refused.status_code == 403

        approved = await h.api.post("/v1/challenges/1/approve", json={"reason": "desk agrees"})

        assert approved.status_code == 200, approved.text
        body = approved.json()
        assert body["state"] == "PROMOTED"
        assert body["decided_by"].startswith("test-")
        assert body["reason"].startswith(f"approved by {body['decided_by']}: desk agrees")
        production = await h.calls.alias(MODEL, "production")
        assert production is not None
        assert production["version"] == 2
        assert (await h.api.get("/v1/challenges/1")).json() == body
        again = await h.api.post("/v1/challenges/1/approve", json={"reason": "twice"})
        assert again.status_code == 409
        assert "is PROMOTED" in again.json()["detail"]
        assert (
            await h.api.post("/v1/challenges/1/reject", json={"reason": "x"})
        ).status_code == 409
        assert (await h.api.get("/v1/challenges/999")).status_code == 404
        assert [a.key.rsplit(":", 1)[1] for a in h.alerts.alerts] == [
            "AWAITING_APPROVAL",
            "PROMOTED",
        ]


async def test_an_approver_rejects_a_challenger_still_shadowing(
    tmp_path: Path, database_url: str, store: ObjectStore
) -> None:
    async with harness(tmp_path, database_url, store, challenge_days=30) as h:
        await register(h, tmp_path, champion=0.3, challenger=2.0)
        await h.loop.run_finished(await shadowed_backfill(h, flipped=True))
        shadowing = (await h.api.get("/v1/challenges/1")).json()
        assert (shadowing["state"], shadowing["days"]) == ("SHADOWING", len(DAYS) - 1)
        assert shadowing["challenger_sharpe"] is None  # not measured before 30 shared days
        assert (
            await h.api.post("/v1/challenges/1/approve", json={"reason": "early"})
        ).status_code == 409

        rejected = await h.api.post("/v1/challenges/1/reject", json={"reason": "not this one"})

        assert rejected.status_code == 200, rejected.text
        assert rejected.json()["state"] == "REJECTED"
        version = (await h.api.get(f"/v1/models/{MODEL}/versions/2")).json()
        assert version["archived_at"] is not None
        assert "not this one" in version["archive_reason"]
        assert await h.calls.alias(MODEL, "challenger") is None
