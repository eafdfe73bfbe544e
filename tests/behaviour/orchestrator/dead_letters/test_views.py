"""The dead-letter routes: who may list and replay, filters, pages and cursors, and what a
replay answers about the records it republished or skipped."""

from __future__ import annotations

import pytest

from marketsense.common.db.models import DeadLetter
from marketsense.common.events import Envelope, IngestRequested
from marketsense.common.runtime import Runtime
from tests.conftest import TEST_AS_OF
from tests.dead_letters_support import Pipeline, dlq_record, index_record


async def _indexed(runtime: Runtime, offset: int, *, run_id: str | None = None) -> DeadLetter:
    """Index a dead-lettered ingest request of `run_id`, or an unreadable record without one."""
    value = (
        b"{not json"
        if run_id is None
        else Envelope.wrap(
            IngestRequested(as_of=TEST_AS_OF, lookback_days=30), run_id=run_id, symbol="AAA"
        ).to_bytes()
    )
    row = await index_record(runtime, dlq_record(runtime, offset, value))
    assert row is not None
    return row


async def test_replay_needs_a_publisher_key_and_known_ids(orchestrator_only: Pipeline) -> None:
    pipeline = orchestrator_only
    body = {"ids": [12345], "reason": "try"}
    anonymous = await pipeline.reader.post(
        "/v1/dead-letters/replay", json=body, headers={"X-API-Key": ""}
    )
    assert anonymous.status_code == 401
    as_reader = await pipeline.reader.post("/v1/dead-letters/replay", json=body)
    assert as_reader.status_code == 403
    unknown = await pipeline.publisher.post("/v1/dead-letters/replay", json=body)
    assert unknown.status_code == 404
    assert "12345" in unknown.json()["detail"]
    both = await pipeline.publisher.post(
        "/v1/dead-letters/replay", json={"ids": [1], "run_id": "r", "reason": "x"}
    )
    assert both.status_code == 422
    listing = await pipeline.reader.get("/v1/dead-letters", headers={"X-API-Key": ""})
    assert listing.status_code == 401


async def test_list_filters_by_run_and_by_whether_a_record_was_replayed(
    orchestrator_only: Pipeline,
) -> None:
    pipeline = orchestrator_only
    first = await _indexed(pipeline.runtime, 0, run_id="run-a")
    second = await _indexed(pipeline.runtime, 1, run_id="run-a")
    other = await _indexed(pipeline.runtime, 2, run_id="run-b")
    unreadable = await _indexed(pipeline.runtime, 3)
    replayed = await pipeline.publisher.post(
        "/v1/dead-letters/replay", json={"ids": [second.id], "reason": "fixed"}
    )
    assert replayed.status_code == 200, replayed.text

    async def listed(**params: str) -> list[int]:
        page = await pipeline.reader.get("/v1/dead-letters", params=params)
        assert page.status_code == 200, page.text
        return [item["id"] for item in page.json()["items"]]

    assert await listed() == [unreadable.id, other.id, second.id, first.id]
    assert await listed(run_id="run-a") == [second.id, first.id]
    assert await listed(run_id="run-c") == []
    assert await listed(replayed="true") == [second.id]
    assert await listed(replayed="false") == [unreadable.id, other.id, first.id]
    assert await listed(run_id="run-a", replayed="false") == [first.id]
    # The topic may be named with its dead-letter suffix, as operators read it on the broker.
    assert len(await listed(topic="ingest.requested.dlq")) == 4


async def test_a_full_last_page_offers_a_cursor_to_an_empty_page(
    orchestrator_only: Pipeline,
) -> None:
    pipeline = orchestrator_only
    rows = [await _indexed(pipeline.runtime, offset) for offset in range(2)]

    full = (await pipeline.reader.get("/v1/dead-letters", params={"limit": 2})).json()
    after = await pipeline.reader.get(
        "/v1/dead-letters", params={"limit": 2, "cursor": full["next_cursor"]}
    )

    assert [item["id"] for item in full["items"]] == [rows[1].id, rows[0].id]
    assert full["next_cursor"] == str(rows[0].id)
    assert after.json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "501"},
        {"cursor": "-1"},
        {"cursor": "1" * 33},
        {"run_id": "r" * 37},
    ],
)
async def test_list_refuses_limits_cursors_and_filters_out_of_range(
    orchestrator_only: Pipeline, params: dict[str, str]
) -> None:
    response = await orchestrator_only.reader.get("/v1/dead-letters", params=params)
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("cursor", [str(2**63), "9" * 19, "²", "%C2%B2", "0", "01", "1e3"])
async def test_a_cursor_beyond_a_row_id_or_not_one_is_refused_in_plain_words(
    orchestrator_only: Pipeline, cursor: str
) -> None:
    response = await orchestrator_only.reader.get("/v1/dead-letters", params={"cursor": cursor})

    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "cursor"]
    assert "int()" not in error["msg"]


async def test_the_openapi_document_states_the_cursor_format_and_the_one_selection_rule(
    orchestrator_only: Pipeline,
) -> None:
    document = orchestrator_only.app.openapi()
    [cursor] = [
        p
        for p in document["paths"]["/v1/dead-letters"]["get"]["parameters"]
        if p["name"] == "cursor"
    ]
    replay = document["components"]["schemas"]["DeadLetterReplay"]

    assert cursor["schema"]["anyOf"][0]["pattern"] == "^[1-9][0-9]{0,18}$"
    assert [choice["required"] for choice in replay["oneOf"]] == [["ids"], ["run_id"]]
    assert "exactly one" in replay["description"]


async def test_replay_skips_records_replayed_before_unless_forced(
    orchestrator_only: Pipeline,
) -> None:
    pipeline = orchestrator_only
    first = await _indexed(pipeline.runtime, 0)
    second = await _indexed(pipeline.runtime, 1)
    replay = "/v1/dead-letters/replay"
    assert (
        await pipeline.publisher.post(replay, json={"ids": [first.id], "reason": "one"})
    ).status_code == 200

    mixed = await pipeline.publisher.post(
        replay, json={"ids": [second.id, first.id, second.id], "reason": "both"}
    )
    forced = await pipeline.publisher.post(
        replay, json={"ids": [first.id, second.id], "reason": "again", "force": True}
    )

    assert mixed.status_code == 200, mixed.text
    assert [item["id"] for item in mixed.json()["replayed"]] == [second.id]
    [skipped] = mixed.json()["skipped"]
    assert skipped["id"] == first.id
    assert "replayed before" in skipped["reason"]
    assert forced.status_code == 200, forced.text
    assert [item["id"] for item in forced.json()["replayed"]] == [first.id, second.id]
    assert forced.json()["skipped"] == []


async def test_replaying_a_run_without_dead_letters_conflicts_naming_the_run(
    orchestrator_only: Pipeline,
) -> None:
    response = await orchestrator_only.publisher.post(
        "/v1/dead-letters/replay", json={"run_id": "run-without-any", "reason": "x"}
    )
    assert response.status_code == 409
    assert "run-without-any has no dead letters" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"ids": [1], "reason": ""},
        {"ids": [], "reason": "x"},
        {"ids": [0], "reason": "x"},
        {"reason": "x"},
        {"ids": [1], "reason": "x", "everything": True},
    ],
)
async def test_replay_refuses_a_body_without_reason_or_one_selection(
    orchestrator_only: Pipeline, body: dict[str, object]
) -> None:
    response = await orchestrator_only.publisher.post("/v1/dead-letters/replay", json=body)
    assert response.status_code == 422, response.text
