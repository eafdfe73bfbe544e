"""Every service as its own process on real Kafka, PostgreSQL and S3: a 200-symbol run."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Table, func, select

from marketsense.common.auth import Role
from marketsense.common.db.engine import Database
from marketsense.common.db.models import FeatureSet, Prediction, RawObject
from marketsense.common.events import (
    FeaturesReady,
    ObjectRef,
    PredictionsReady,
    RawDataReady,
    parse_event,
)
from marketsense.common.parquet import from_parquet_bytes
from marketsense.common.store import ObjectStore
from tests.backends import as_environment, real_servers, s3_store
from tests.conftest import TEST_AS_OF, eventually, infra
from tests.e2e.processes import Services, running_services, scraped_by_prometheus
from tests.model_registry_rows import new_api_key

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

AS_OF = TEST_AS_OF
SERVICES = ("orchestrator", "ingestion", "processing", "prediction")
SYMBOLS = [f"E{i:03d}" for i in range(200)]


@pytest.fixture
def deployment(
    fresh_pg_database_url: str,
    tmp_path: Path,
    prefix: str,
    predictor_dir: Path,
    sentiment_model_dir: Path,
) -> Iterator[tuple[Services, dict[str, str]]]:
    """The four pipeline services as processes, and the settings they run with."""
    env = as_environment(
        real_servers(database_url=fresh_pg_database_url, prefix=prefix, bucket="marketsense-e2e")
        | {
            "predictor_path": predictor_dir,
            "sentiment_model_path": sentiment_model_dir,
            "home": tmp_path / "home",
        }
    )
    with running_services(SERVICES, env, tmp_path) as services:
        yield services, env


async def _read_topic(topic: str, expected: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=infra("MARKETSENSE_TEST_KAFKA"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while len(values) < expected and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            values += [r.value for records in batch.values() for r in records if r.value]
        # One more poll: anything past `expected` would be a duplicate.
        batch = await consumer.getmany(timeout_ms=1000)
        values += [r.value for records in batch.values() for r in records if r.value]
    finally:
        await consumer.stop()
    return values


async def _row_counts(database: Database, run_id: str) -> dict[str, int]:
    async with database.engine.connect() as conn:
        return {
            table.name: int(
                await conn.scalar(
                    select(func.count()).select_from(table).where(table.c.run_id == run_id)
                )
                or 0
            )
            for table in (RawObject.__table__, FeatureSet.__table__, Prediction.__table__)
            if isinstance(table, Table)
        }


async def _run_to_the_end(client: httpx.AsyncClient, orchestrator: str) -> dict[str, object]:
    """Start a run over every symbol and wait until it ends; the finished run."""
    created = await client.post(
        f"{orchestrator}/v1/runs",
        json={"as_of": AS_OF.isoformat(), "symbols": SYMBOLS},
    )
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    run: dict[str, object] = {}

    async def finished() -> bool:
        nonlocal run
        run = (await client.get(f"{orchestrator}/v1/runs/{run_id}")).json()
        return run["state"] not in {"PENDING", "RUNNING"}

    await eventually(finished, timeout=180, interval=0.25)
    return run


async def _prometheus_sees_the_pipeline(
    client: httpx.AsyncClient, services: Services, label: str
) -> None:
    """Prometheus, as an SRE's would, scrapes every service and sees the pipeline's counters."""
    with scraped_by_prometheus(services.ports, label) as query:

        async def all_up() -> bool:
            result = (await client.get(query, params={"query": f'up{{test="{label}"}}'})).json()
            values = [r["value"][1] for r in result["data"]["result"]]
            return sorted(values) == ["1"] * len(SERVICES)

        await eventually(all_up, timeout=30, interval=0.5)
        consumed = (
            await client.get(
                query,
                params={
                    "query": "sum by (service) (marketsense_events_consumed_total"
                    f'{{test="{label}",topic="features.ready"}})'
                },
            )
        ).json()["data"]["result"]
        assert [(r["metric"]["service"], r["value"][1]) for r in consumed] == [
            ("prediction", str(len(SYMBOLS)))
        ]


async def _events_carry_verified_references(
    store: ObjectStore, prefix: str, run_id: str
) -> list[FeaturesReady]:
    """Every event carries references (or keys), and every referenced object verifies; the
    run's features events."""
    features: list[FeaturesReady] = []
    for payload_type in (RawDataReady, FeaturesReady, PredictionsReady):
        values = await _read_topic(prefix + payload_type.topic, len(SYMBOLS))
        events = [parse_event(v) for v in values]
        features += [p for _, p in events if isinstance(p, FeaturesReady)]
        assert len(events) == len(SYMBOLS), payload_type.topic
        assert sorted(e.symbol or "" for e, _ in events) == SYMBOLS
        for envelope, payload in events:
            assert envelope.run_id == run_id
            refs = [v for v in vars(payload).values() if isinstance(v, ObjectRef)]
            for ref in refs:
                await store.get(ref)  # raises on a checksum mismatch
            assert len(envelope.to_bytes()) < 2048, "events carry references, not data"
    for dlq in ("ingest.requested.dlq", "raw.ready.dlq", "features.ready.dlq"):
        assert await _read_topic(prefix + dlq, 0) == []
    return features


async def _resend_every_request(prefix: str) -> None:
    """Publish every ingest request on the topic once more, under its own key."""
    requests = await _read_topic(prefix + "ingest.requested", len(SYMBOLS))
    producer = AIOKafkaProducer(bootstrap_servers=infra("MARKETSENSE_TEST_KAFKA"))
    await producer.start()
    try:
        for value in requests:
            envelope, _ = parse_event(value)
            await producer.send(
                prefix + "ingest.requested", value, key=(envelope.key or "").encode()
            )
        await producer.flush()
    finally:
        await producer.stop()


async def _requests_consumed(ingestion_metrics: str) -> list[float]:
    """What ingestion's metrics say it consumed from `ingest.requested`."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(ingestion_metrics)).text
    return [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "marketsense_events_consumed_total"
        and sample.labels["topic"] == "ingest.requested"
    ]


def _stop_gracefully(services: Services) -> None:
    """SIGTERM finishes in-flight work and exits cleanly."""
    for process in services.processes.values():
        process.send_signal(signal.SIGTERM)
    for name, process in services.processes.items():
        # uvicorn re-raises the SIGTERM it handled, so a clean stop reports that signal.
        assert process.wait(timeout=30) in {0, -signal.SIGTERM}, f"{name} did not stop"
        assert f"marketsense {name} stopped" in services.logs[name].read_text()


async def test_two_hundred_symbols_flow_through_every_service_process_and_a_replay_changes_nothing(
    deployment: tuple[Services, dict[str, str]], pg_database: Database
) -> None:
    services, env = deployment
    base = {name: services.url(name) for name in SERVICES}
    async with httpx.AsyncClient(timeout=10) as client:
        await services.wait_ready(client)
        # Starting a run needs a publisher key; reading runs and predictions a reader's.
        client.headers["X-API-Key"] = await new_api_key(pg_database, role=Role.PUBLISHER)

        run = await _run_to_the_end(client, base["orchestrator"])
        run_id = run["id"]
        assert run["state"] == "SUCCESS", json.dumps(run)[:2000]
        assert run["stages"] == [
            {"stage": stage, "counts": {"SUCCESS": len(SYMBOLS)}}
            for stage in ("ingest", "process", "predict")
        ]

        # Prediction's routes need a reader key.
        key = await new_api_key(pg_database)
        predictions = [
            (
                await client.get(
                    f"{base['prediction']}/v1/predictions/{s}/latest", headers={"X-API-Key": key}
                )
            ).json()
            for s in SYMBOLS
        ]
        assert {p["run_id"] for p in predictions} == {run_id}
        assert sorted(p["symbol"] for p in predictions) == SYMBOLS

        metrics = (await client.get(f"{base['processing']}/metrics")).text
        assert 'marketsense_events_consumed_total{group="' in metrics
        assert (
            "marketsense_http_request_duration_seconds_bucket"
            in (await client.get(f"{base['orchestrator']}/metrics")).text
        )
        await _prometheus_sees_the_pipeline(client, services, env["MARKETSENSE_TOPIC_PREFIX"])

    store = s3_store(env["MARKETSENSE_OBJECT_STORE_URL"])
    prefix = env["MARKETSENSE_TOPIC_PREFIX"]
    features = await _events_carry_verified_references(store, prefix, str(run_id))

    # Features carry the day's sentiment where there were texts, and explicit gaps where not.
    rows = pd.concat([from_parquet_bytes(await store.get(f.features)) for f in features])
    with_texts = rows["has_sentiment"] == 1
    assert 0 < with_texts.sum() < len(rows)
    assert rows.loc[with_texts, "sentiment_count"].min() >= 1
    assert rows.loc[~with_texts, "sentiment_mean"].isna().all()
    await store.close()

    # Replaying every request of the run changes nothing: no new row, object or event.
    before = await _row_counts(pg_database, str(run_id))
    assert before == {
        "raw_objects": 2 * len(SYMBOLS),
        "features": len(SYMBOLS),
        "predictions": len(SYMBOLS),
    }
    await _resend_every_request(prefix)

    async def replay_consumed() -> bool:
        consumed = await _requests_consumed(f"{base['ingestion']}/metrics")
        return consumed == [2 * len(SYMBOLS)]

    await eventually(replay_consumed, timeout=60, interval=0.5)
    assert await _row_counts(pg_database, str(run_id)) == before
    assert len(await _read_topic(prefix + RawDataReady.topic, len(SYMBOLS))) == len(SYMBOLS)

    _stop_gracefully(services)
