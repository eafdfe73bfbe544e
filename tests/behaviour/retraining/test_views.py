"""The retraining API: requests newest first a page at a time, one request by id, and a 404
that says where to look; a reader key is enough, none is refused."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from marketsense.common.auth import KEY_HEADER, Role, create_key
from marketsense.common.events import RetrainRequested
from marketsense.retraining.store import record_request
from tests.behaviour.retraining.conftest import Running

START = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("store", ["file"], indirect=True)
async def test_requests_are_listed_newest_first_a_page_at_a_time(worker: Running) -> None:
    ids = []
    for i in range(3):
        request = RetrainRequested(
            model_name="absent-model",
            reason=f"decay {i}",
            window_start=dt.date(2030, 1, 1),
            window_end=dt.date(2030, 1, 31),
        )
        retrain_id, _ = await record_request(
            worker.runtime,
            event_id=str(uuid.uuid4()),
            request=request,
            now=START + dt.timedelta(minutes=i),
        )
        ids.append(retrain_id)
    async with worker.runtime.transaction() as session:
        reader = await create_key(session, name="reader", role=Role.READER)
    headers = {KEY_HEADER: reader}

    first = (await worker.api.get("/v1/retrains?limit=2", headers=headers)).json()
    second = await worker.api.get(
        f"/v1/retrains?limit=2&cursor={first['next_cursor']}", headers=headers
    )
    one = await worker.api.get(f"/v1/retrains/{ids[1]}", headers=headers)
    missing_id = str(uuid.uuid4())
    missing = await worker.api.get(f"/v1/retrains/{missing_id}", headers=headers)
    bad_cursor = await worker.api.get(f"/v1/retrains?cursor={missing_id}", headers=headers)
    anonymous = await worker.api.get("/v1/retrains", headers={KEY_HEADER: ""})

    assert [r["id"] for r in first["items"]] == [ids[2], ids[1]]
    assert [r["id"] for r in second.json()["items"]] == [ids[0]]
    assert second.json()["next_cursor"] is None
    assert one.json()["reason"] == "decay 1"
    assert one.json()["runs"] == []
    assert missing.status_code == 404
    assert missing.json()["detail"] == (
        f"no retrain request {missing_id}; GET /v1/retrains lists them, newest first"
    )
    assert bad_cursor.status_code == 422
    assert anonymous.status_code == 401
