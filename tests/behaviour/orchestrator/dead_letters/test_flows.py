"""The dead-letter index: records are indexed once and alerted once, and a replay after the cause
is fixed completes the run."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select

from marketsense.cli.embedded import PipelineSettings
from marketsense.common.app import create_app
from marketsense.common.auth import Role
from marketsense.common.bus import Outgoing
from marketsense.common.db.models import DeadLetter, OperatorAction, Prediction
from marketsense.common.db.outbox import add_event
from marketsense.common.events import Envelope, ObjectRef, RawDataReady
from marketsense.common.features import MIN_BARS
from marketsense.common.parquet import to_parquet_bytes
from marketsense.common.runtime import Runtime
from marketsense.common.states import Stage, TaskState, move_task
from marketsense.common.store import sha256_hex
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.orchestrator.app import create_component as orchestrator
from marketsense.prediction.app import create_component as prediction
from marketsense.processing.app import create_component as processing
from tests.backends import real_servers
from tests.conftest import INTEGRATION, eventually
from tests.dead_letters_support import (
    AS_OF,
    HOOK_PATH,
    Pipeline,
    dead_letter_alerts,
    dlq_record,
    index_record,
)
from tests.model_registry_rows import new_api_key


@pytest.fixture(params=["embedded", pytest.param("real", marks=INTEGRATION)])
def settings(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    prefix: str,
    predictor_dir: Path,
    sentiment_model_dir: Path,
    httpserver: HTTPServer,
) -> PipelineSettings:
    """Embedded default or the real servers, alerting to a local JSON webhook."""
    httpserver.expect_request(HOOK_PATH, method="POST").respond_with_data("ok")
    values: dict[str, object] = {
        "home": tmp_path / "home",
        "handler_retry_base_seconds": 0.01,
        "predictor_path": predictor_dir,
        "sentiment_model_path": sentiment_model_dir,
        "alert_webhook_url": httpserver.url_for(HOOK_PATH),
        # The real database outlives the test: no dedupe window, so earlier tests' alerts with
        # the same key cannot hide this test's (one alert per dead letter holds regardless).
        "alert_dedupe_minutes": 0,
    }
    if request.param == "real":
        values |= real_servers(
            database_url=request.getfixturevalue("fresh_pg_database_url"), prefix=prefix
        )
    return PipelineSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def pipeline(settings: PipelineSettings) -> AsyncIterator[Pipeline]:
    """The stages after ingestion (tests write ingestion's output themselves)."""
    runtime = Runtime(settings, service="pipeline", relay_all=True)
    components = [
        orchestrator(runtime, settings),
        processing(runtime, settings),
        prediction(runtime, settings),
    ]
    app = create_app(runtime, components, title="test")
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as reader,
        httpx.AsyncClient(transport=transport, base_url="http://t") as publisher,
    ):
        name = f"operator-{uuid.uuid4().hex[:8]}"
        reader.headers["X-API-Key"] = await new_api_key(runtime.database)
        publisher.headers["X-API-Key"] = await new_api_key(
            runtime.database, role=Role.PUBLISHER, name=name
        )
        yield Pipeline(app, runtime, reader, publisher, name)


async def _start_run(pipeline: Pipeline, symbols: list[str]) -> str:
    created = await pipeline.publisher.post(
        "/v1/runs", json={"as_of": AS_OF.isoformat(), "universe": symbols}
    )
    assert created.status_code == 201, created.text
    run_id: str = created.json()["id"]
    return run_id


async def _finished(api: httpx.AsyncClient, run_id: str) -> dict[str, object]:
    run: dict[str, object] = {}

    async def done() -> bool:
        nonlocal run
        run = (await api.get(f"/v1/runs/{run_id}")).json()
        return run["state"] not in {"PENDING", "RUNNING"}

    await eventually(done, timeout=90, interval=0.1)
    return run


async def _ingested(runtime: Runtime, run_id: str, refs: dict[str, ObjectRef]) -> None:
    """Play ingestion: mark each symbol's ingest task done and announce its raw bars."""
    async with runtime.transaction() as session:
        for symbol, ref in refs.items():
            for source, target in (
                (TaskState.PENDING, TaskState.RUNNING),
                (TaskState.RUNNING, TaskState.SUCCESS),
            ):
                assert await move_task(
                    session,
                    run_id=run_id,
                    symbol=symbol,
                    stage=Stage.INGEST,
                    source={source},
                    target=target,
                )
            add_event(
                session,
                Envelope.wrap(
                    RawDataReady(as_of=AS_OF, bars=ref, rows=60), run_id=run_id, symbol=symbol
                ),
                source="pipeline",
            )


async def _ingest_good_and_damaged(runtime: Runtime, run_id: str, damage: str) -> tuple[str, bytes]:
    """Ingest GOOD's bars and MISS's, the latter `missing` from the store or `corrupted` in it;
    the key and the bytes MISS's object should have."""
    market = SimulatedMarket(seed=7)
    good = await runtime.store.put(
        f"raw/test/{run_id}/GOOD.parquet",
        to_parquet_bytes(market.daily_bars("GOOD", as_of=AS_OF, days=MIN_BARS)),
    )
    missing_key = f"raw/test/{run_id}/MISS.parquet"
    missing_bytes = to_parquet_bytes(market.daily_bars("MISS", as_of=AS_OF, days=MIN_BARS))
    missing = ObjectRef(
        uri=runtime.store.uri_for(missing_key),
        sha256=sha256_hex(missing_bytes),
        size=len(missing_bytes),
    )
    if damage == "corrupted":
        await runtime.store.put(missing_key, missing_bytes[:-10] + b"0" * 10)
    await _ingested(runtime, run_id, {"GOOD": good, "MISS": missing})
    return missing_key, missing_bytes


async def _indexed_dead_letter(pipeline: Pipeline, run_id: str) -> dict[str, Any]:
    """The run's one dead letter, once the index lists it."""
    listed: dict[str, Any] = {}

    async def indexed() -> bool:
        nonlocal listed
        listed = (await pipeline.reader.get("/v1/dead-letters", params={"run_id": run_id})).json()
        return len(listed["items"]) == 1

    await eventually(indexed)
    dead: dict[str, Any] = listed["items"][0]
    return dead


async def _after_replay(pipeline: Pipeline, run_id: str) -> tuple[int, OperatorAction, int]:
    """MISS's predictions in the run, the operator's one replay audit entry, and the run's
    indexed dead letters."""
    async with pipeline.runtime.database.session() as session:
        predicted = await session.scalar(
            select(func.count())
            .select_from(Prediction)
            .where(Prediction.run_id == run_id, Prediction.symbol == "MISS")
        )
        audit = (
            await session.scalars(
                select(OperatorAction).where(
                    OperatorAction.action == "replay",
                    OperatorAction.actor == pipeline.publisher_name,
                )
            )
        ).one()
        indexed_rows = await session.scalar(
            select(func.count()).select_from(DeadLetter).where(DeadLetter.run_id == run_id)
        )
    return predicted or 0, audit, indexed_rows or 0


@pytest.mark.parametrize("damage", ["missing", "corrupted"])
async def test_bad_object_is_indexed_alerted_once_and_replay_after_restoring_completes_run(
    pipeline: Pipeline, httpserver: HTTPServer, damage: str
) -> None:
    runtime = pipeline.runtime
    run_id = await _start_run(pipeline, ["GOOD", "MISS"])
    missing_key, missing_bytes = await _ingest_good_and_damaged(runtime, run_id, damage)

    run = await _finished(pipeline.reader, run_id)
    assert run["state"] == "FAILED"  # one of two symbols is over the 1% threshold
    dead = await _indexed_dead_letter(pipeline, run_id)
    assert (dead["original_topic"], dead["event_type"], dead["symbol"]) == (
        "raw.ready",
        "raw.ready",
        "MISS",
    )
    assert dead["replayed_at"] is None
    assert dead["attempts"] >= 1
    await eventually(lambda: len(dead_letter_alerts(httpserver)) == 1)
    (alert,) = dead_letter_alerts(httpserver)
    assert alert["key"] == f"dead-letter:raw.ready:{run_id}:MISS"
    assert alert["severity"] == "warning"
    assert f"marketsense dlq replay --id {dead['id']}" in str(alert["text"])
    assert dead["error"].split(":")[0] in str(alert["text"])

    # The operator restores the object, then replays the run's dead letters.
    await runtime.store.put(missing_key, missing_bytes)
    replay = await pipeline.publisher.post(
        "/v1/dead-letters/replay", json={"run_id": run_id, "reason": "object restored"}
    )
    assert replay.status_code == 200, replay.text
    body = replay.json()
    assert [r["id"] for r in body["replayed"]] == [dead["id"]]
    assert body["replayed"][0]["replayed_by"] == pipeline.publisher_name
    assert body["skipped"] == []

    run = await _finished(pipeline.reader, run_id)
    assert run["state"] == "SUCCESS", run
    predicted, audit, indexed_rows = await _after_replay(pipeline, run_id)
    assert predicted == 1
    assert (audit.actor, audit.reason, audit.target) == (
        pipeline.publisher_name,
        "object restored",
        "dead-letters",
    )
    assert json.loads(audit.details)["ids"] == [dead["id"]]
    assert indexed_rows == 1, "the replay succeeded, so nothing new was dead-lettered"
    assert len(dead_letter_alerts(httpserver)) == 1

    again = await pipeline.publisher.post(
        "/v1/dead-letters/replay", json={"ids": [dead["id"]], "reason": "twice"}
    )
    assert again.status_code == 409
    assert "force" in again.json()["detail"]
    replayed = (
        await pipeline.reader.get("/v1/dead-letters", params={"replayed": "true", "run_id": run_id})
    ).json()
    assert [r["id"] for r in replayed["items"]] == [dead["id"]]


async def test_unreadable_records_are_indexed_with_what_can_be_read_once_each(
    orchestrator_only: Pipeline, httpserver: HTTPServer
) -> None:
    pipeline = orchestrator_only
    runtime = pipeline.runtime
    wrong_version = json.dumps(
        {
            "type": "ingest.requested",
            "run_id": "run-x",
            "symbol": "VER",
            "schema_version": 99,
            "payload": {},
            "extra": 1,
        }
    ).encode()
    records = [
        dlq_record(runtime, 0, b"{not json"),
        dlq_record(runtime, 1, wrong_version, key="VER"),
        dlq_record(runtime, 2, b"[1, 2]", key="L"),
    ]
    for record in records:
        assert await index_record(runtime, record) is not None
    # Kafka may deliver a record twice; the index and the alert keep one.
    assert await index_record(runtime, records[0]) is None

    page = (await pipeline.reader.get("/v1/dead-letters", params={"limit": 2})).json()
    assert [(r["dlq_offset"], r["symbol"]) for r in page["items"]] == [(2, None), (1, "VER")]
    assert page["items"][1]["run_id"] == "run-x"
    assert page["items"][1]["event_type"] == "ingest.requested"
    rest = (
        await pipeline.reader.get(
            "/v1/dead-letters", params={"limit": 2, "cursor": page["next_cursor"]}
        )
    ).json()
    assert [r["dlq_offset"] for r in rest["items"]] == [0]
    assert rest["items"][0]["value"] == "{not json"
    assert rest["items"][0]["failed_at"].startswith("2026-11-18T21:30")
    assert rest["next_cursor"] is None
    by_topic = (
        await pipeline.reader.get("/v1/dead-letters", params={"topic": "ingest.requested"})
    ).json()
    assert len(by_topic["items"]) == 3
    other = (await pipeline.reader.get("/v1/dead-letters", params={"topic": "raw.ready"})).json()
    assert other["items"] == []
    bad_cursor = await pipeline.reader.get("/v1/dead-letters", params={"cursor": "abc"})
    assert bad_cursor.status_code == 422

    # Two unreadable records share a dedupe key (no run, no symbol): one alert for both.
    keys = sorted(str(a["key"]) for a in dead_letter_alerts(httpserver))
    assert keys == ["dead-letter:ingest.requested:-:-", "dead-letter:ingest.requested:run-x:VER"]


async def test_a_bad_event_on_a_real_topic_is_dead_lettered_and_indexed(
    pipeline: Pipeline, httpserver: HTTPServer
) -> None:
    runtime = pipeline.runtime
    await runtime.bus.publish_many([Outgoing("raw.ready", b"\xff not an event", "JUNK")])

    async def indexed() -> bool:
        page = (await pipeline.reader.get("/v1/dead-letters", params={"topic": "raw.ready"})).json()
        return [r["key"] for r in page["items"]] == ["JUNK"]

    await eventually(indexed)
    await eventually(lambda: len(dead_letter_alerts(httpserver)) == 1)
    assert dead_letter_alerts(httpserver)[0]["key"] == "dead-letter:raw.ready:-:-"
