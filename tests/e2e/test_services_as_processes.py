"""Every service as its own process on real Kafka, PostgreSQL and S3: a 50-symbol run."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import create_async_engine

from marketsense.common.auth import Role, create_key
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
from marketsense.common.store.s3 import S3Store
from tests.conftest import TEST_AS_OF, eventually, infra

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

AS_OF = TEST_AS_OF
SERVICES = ("orchestrator", "ingestion", "processing", "prediction")
SYMBOLS = [f"E{i:03d}" for i in range(200)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def deployment(
    pg_database_url: str,
    tmp_path: Path,
    prefix: str,
    predictor_dir: Path,
    sentiment_model_dir: Path,
) -> Iterator[dict[str, object]]:
    """Start the four pipeline services as processes; SIGTERM them afterwards."""
    bucket_prefix = uuid.uuid4().hex[:10]
    env = os.environ | {
        "MARKETSENSE_DATABASE_URL": pg_database_url,
        "MARKETSENSE_KAFKA_BOOTSTRAP_SERVERS": infra("MARKETSENSE_TEST_KAFKA"),
        "MARKETSENSE_OBJECT_STORE_URL": f"s3://marketsense-e2e/{bucket_prefix}",
        "MARKETSENSE_S3_ENDPOINT_URL": infra("MARKETSENSE_TEST_S3_ENDPOINT"),
        "MARKETSENSE_S3_ACCESS_KEY_ID": "test",
        "MARKETSENSE_S3_SECRET_ACCESS_KEY": "test",
        "MARKETSENSE_TOPIC_PREFIX": prefix,
        "MARKETSENSE_CONSUMER_GROUP_PREFIX": prefix + "group",
        "MARKETSENSE_PREDICTOR_PATH": str(predictor_dir),
        "MARKETSENSE_SENTIMENT_MODEL_PATH": str(sentiment_model_dir),
        "MARKETSENSE_HOME": str(tmp_path / "home"),
    }
    ports = {name: _free_port() for name in SERVICES}
    logs = {name: (tmp_path / f"{name}.log").open("wb") for name in SERVICES}
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-m", f"marketsense.{name}"],
            env=env | {"MARKETSENSE_PORT": str(ports[name])},
            stdout=logs[name],
            stderr=subprocess.STDOUT,
        )
        for name in SERVICES
    }
    try:
        yield {"ports": ports, "processes": processes, "env": env, "tmp": tmp_path}
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs.values():
            log.close()


async def _wait_ready(
    client: httpx.AsyncClient, url: str, process: subprocess.Popen[bytes]
) -> None:
    async def ready() -> bool:
        assert process.poll() is None, f"{url} exited with {process.returncode}"
        try:
            return (await client.get(url)).status_code == 200
        except httpx.TransportError:
            return False

    await eventually(ready, timeout=90, interval=0.25)


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


async def _scraped_by_prometheus(
    client: httpx.AsyncClient, ports: dict[str, int], label: str
) -> None:
    targets = Path(infra("MARKETSENSE_TEST_PROMETHEUS_TARGETS"))
    target_file = targets / f"{label.strip('.')}.json"
    staging = targets / f".{label.strip('.')}.tmp"
    staging.write_text(
        json.dumps(
            [
                {"targets": [f"127.0.0.1:{port}"], "labels": {"service": name, "test": label}}
                for name, port in ports.items()
            ]
        )
    )
    staging.rename(target_file)  # Prometheus may read a half-written file; a rename is atomic
    query = f"{infra('MARKETSENSE_TEST_PROMETHEUS')}/api/v1/query"
    try:

        async def all_up() -> bool:
            result = (await client.get(query, params={"query": f'up{{test="{label}"}}'})).json()
            values = [r["value"][1] for r in result["data"]["result"]]
            return sorted(values) == ["1"] * len(ports)

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
    finally:
        target_file.unlink(missing_ok=True)


async def _reader_key(database_url: str) -> str:
    """A new reader key in the deployment's database: prediction's routes need one."""
    database = Database(database_url)
    try:
        async with database.session() as session:
            key = await create_key(session, name=f"e2e-{uuid.uuid4().hex[:8]}", role=Role.READER)
            await session.commit()
    finally:
        await database.dispose()
    return key


async def _row_counts(database_url: str, run_id: str) -> dict[str, int]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
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
    finally:
        await engine.dispose()


async def test_two_hundred_symbols_flow_through_every_service_process_and_a_replay_changes_nothing(
    deployment: dict[str, object],
) -> None:
    ports: dict[str, int] = deployment["ports"]  # type: ignore[assignment]
    processes: dict[str, subprocess.Popen[bytes]] = deployment["processes"]  # type: ignore[assignment]
    env: dict[str, str] = deployment["env"]  # type: ignore[assignment]
    base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    async with httpx.AsyncClient(timeout=10) as client:
        for name in SERVICES:
            await _wait_ready(client, f"{base[name]}/readyz", processes[name])

        created = await client.post(
            f"{base['orchestrator']}/v1/runs",
            json={"as_of": AS_OF.isoformat(), "symbols": SYMBOLS},
        )
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]
        run: dict[str, object] = {}

        async def finished() -> bool:
            nonlocal run
            run = (await client.get(f"{base['orchestrator']}/v1/runs/{run_id}")).json()
            return run["state"] not in {"PENDING", "RUNNING"}

        await eventually(finished, timeout=180, interval=0.25)
        assert run["state"] == "SUCCESS", json.dumps(run)[:2000]
        assert run["stages"] == [
            {"stage": stage, "counts": {"SUCCESS": len(SYMBOLS)}}
            for stage in ("ingest", "process", "predict")
        ]

        key = await _reader_key(env["MARKETSENSE_DATABASE_URL"])
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

        # Prometheus, as an SRE's would, scrapes every service and sees the pipeline's counters.
        await _scraped_by_prometheus(client, ports, env["MARKETSENSE_TOPIC_PREFIX"])

    # Every event carries references (or keys), and every referenced object verifies.
    store = S3Store(
        env["MARKETSENSE_OBJECT_STORE_URL"],
        endpoint_url=env["MARKETSENSE_S3_ENDPOINT_URL"],
        access_key_id="test",
        secret_access_key="test",
    )
    prefix = env["MARKETSENSE_TOPIC_PREFIX"]
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

    # Features carry the day's sentiment where there were texts, and explicit gaps where not.
    rows = pd.concat([from_parquet_bytes(await store.get(f.features)) for f in features])
    with_texts = rows["has_sentiment"] == 1
    assert 0 < with_texts.sum() < len(rows)
    assert rows.loc[with_texts, "sentiment_count"].min() >= 1
    assert rows.loc[~with_texts, "sentiment_mean"].isna().all()
    await store.close()

    # Replaying every request of the run changes nothing: no new row, object or event.
    before = await _row_counts(env["MARKETSENSE_DATABASE_URL"], run_id)
    assert before == {
        "raw_objects": 2 * len(SYMBOLS),
        "features": len(SYMBOLS),
        "predictions": len(SYMBOLS),
    }
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
    ingestion_metrics = f"http://127.0.0.1:{ports['ingestion']}/metrics"

    async def replay_consumed() -> bool:
        async with httpx.AsyncClient() as client:
            text = (await client.get(ingestion_metrics)).text
        consumed = [
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "marketsense_events_consumed_total"
            and sample.labels["topic"] == "ingest.requested"
        ]
        return consumed == [2 * len(SYMBOLS)]

    await eventually(replay_consumed, timeout=60, interval=0.5)
    assert await _row_counts(env["MARKETSENSE_DATABASE_URL"], run_id) == before
    assert len(await _read_topic(prefix + RawDataReady.topic, len(SYMBOLS))) == len(SYMBOLS)

    # Graceful shutdown: SIGTERM finishes in-flight work and exits cleanly.
    for process in processes.values():
        process.send_signal(signal.SIGTERM)
    tmp: Path = deployment["tmp"]  # type: ignore[assignment]
    for name, process in processes.items():
        # uvicorn re-raises the SIGTERM it handled, so a clean stop reports that signal.
        assert process.wait(timeout=30) in {0, -signal.SIGTERM}, f"{name} did not stop"
        assert f"marketsense {name} stopped" in (tmp / f"{name}.log").read_text()
