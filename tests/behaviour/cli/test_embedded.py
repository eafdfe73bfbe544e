"""A run through orchestrator, ingestion, processing, prediction and monitoring in one process,
on both the embedded default and the real servers."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from marketsense.cli.embedded import PipelineSettings, build_pipeline_app
from marketsense.common.app import create_app
from marketsense.common.auth import Role
from marketsense.common.bus import Record, Subscription
from marketsense.common.calendar import exchange_calendar
from marketsense.common.db.models import ApiKey, FeatureSet, Outcome, Prediction, RawObject
from marketsense.common.db.outbox import add_event
from marketsense.common.events import Envelope, ObjectRef, RawDataReady
from marketsense.common.features import MIN_BARS
from marketsense.common.parquet import to_parquet_bytes
from marketsense.common.registry_calls import IN_PROCESS_URL, RegistryCalls
from marketsense.common.runtime import Runtime
from marketsense.common.states import Stage, TaskState, move_task
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.orchestrator.app import create_component as orchestrator
from marketsense.prediction.app import create_component as prediction
from marketsense.processing.app import create_component as processing
from tests.backends import real_servers
from tests.conftest import INTEGRATION, TEST_AS_OF, eventually
from tests.model_registry_rows import new_api_key

AS_OF = TEST_AS_OF


@pytest.fixture(params=["embedded", pytest.param("real", marks=INTEGRATION)])
def settings(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    prefix: str,
    predictor_dir: Path,
    sentiment_model_dir: Path,
) -> PipelineSettings:
    """Embedded default (SQLite, folder, in-process bus) or the real servers."""
    values: dict[str, object] = {
        "home": tmp_path / "home",
        "handler_retry_base_seconds": 0.01,
        "predictor_path": predictor_dir,
        "sentiment_model_path": sentiment_model_dir,
    }
    if request.param == "real":
        values |= real_servers(
            database_url=request.getfixturevalue("fresh_pg_database_url"), prefix=prefix
        )
    return PipelineSettings(**values)  # type: ignore[arg-type]


async def _send_reader_key(api: httpx.AsyncClient, runtime: Runtime) -> None:
    """Send a publisher key with every request: starting runs needs one, reading predictions a
    reader's (which a publisher holds too)."""
    api.headers["X-API-Key"] = await new_api_key(runtime.database, role=Role.PUBLISHER)


async def _finished(api: httpx.AsyncClient, run_id: str) -> dict[str, object]:
    run: dict[str, object] = {}

    async def done() -> bool:
        nonlocal run
        run = (await api.get(f"/v1/runs/{run_id}")).json()
        return run["state"] not in {"PENDING", "RUNNING"}

    await eventually(done, timeout=90, interval=0.1)
    return run


async def test_run_over_every_stage_ends_success_with_a_prediction_per_symbol(
    settings: PipelineSettings,
) -> None:
    app = build_pipeline_app(settings)
    symbols = [f"S{i:02d}" for i in range(12)]
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api,
    ):
        await _send_reader_key(api, app.state.runtime)
        created = await api.post("/v1/runs", json={"as_of": AS_OF.isoformat(), "symbols": symbols})
        assert created.status_code == 201, created.text
        run = await _finished(api, created.json()["id"])
        assert run["state"] == "SUCCESS"
        assert run["failed"] == []
        for stage in run["stages"]:  # type: ignore[attr-defined]
            assert stage["counts"] == {"SUCCESS": len(symbols)}
        for symbol in symbols:
            latest = (await api.get(f"/v1/predictions/{symbol}/latest")).json()
            assert latest["run_id"] == run["id"]
            assert latest["as_of"] == AS_OF.isoformat()
            assert 0.0 <= latest["prob_up"] <= 1.0
            assert latest["model_name"] == "baseline-predictor"
        # Monitoring resolves the run's predictions once the next session's run stores its bars.
        runtime = app.state.runtime
        after = exchange_calendar().next_session(AS_OF)
        second = await api.post("/v1/runs", json={"as_of": after.isoformat(), "symbols": symbols})
        assert (await _finished(api, second.json()["id"]))["state"] == "SUCCESS"

        async def resolved() -> bool:
            async with runtime.database.session() as session:
                found = await session.scalars(select(Outcome.symbol).where(Outcome.as_of == AS_OF))
                return sorted(found) == symbols

        await eventually(resolved)
        missing = await api.get("/v1/predictions/NOPE/latest")
        assert missing.status_code == 404
        assert "NOPE" in missing.json()["detail"]
        ready = await api.get("/readyz")
        assert ready.json() == {
            "ready": True,
            "checks": {
                "database": True,
                "bus": True,
                "object_store": True,
                "sentiment_model": True,
                "predictor": True,
            },
            "serving": ready.json()["serving"],
        }
        assert {(r["model"], r["variant"]) for r in ready.json()["serving"]} == {
            ("minilm-sentiment", "int8"),
            ("baseline-predictor", "fp32"),
        }
        # The retraining worker runs beside them, calling the registry with a key made at
        # start-up,
        assert (await api.get("/v1/retrains")).json() == {"items": [], "next_cursor": None}
        # in-process: no model is registered here, and a call without a valid key would
        # raise (401) instead of answering None (404).
        calls = RegistryCalls(IN_PROCESS_URL, transport=app.state.registry_access)
        unregistered = await calls.model("baseline-predictor")
        await calls.aclose()
        assert unregistered is None
    async with runtime.database.session() as session:
        live = await session.scalars(
            select(ApiKey.name).where(
                ApiKey.name.startswith("embedded-pipeline-"), ApiKey.revoked_at.is_(None)
            )
        )
        assert list(live) == []


def _consumed(topic: str, group: str) -> float:
    value = REGISTRY.get_sample_value(
        "marketsense_events_consumed_total", {"topic": topic, "group": group}
    )
    return value or 0.0


async def test_redelivered_raw_data_event_changes_nothing(settings: PipelineSettings) -> None:
    app = build_pipeline_app(settings)
    runtime: Runtime = app.state.runtime
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api,
    ):
        await _send_reader_key(api, runtime)
        run_id = (
            await api.post("/v1/runs", json={"as_of": AS_OF.isoformat(), "symbols": ["AAA"]})
        ).json()["id"]
        await _finished(api, run_id)
        first = (await api.get("/v1/predictions/AAA/latest")).json()
        async with runtime.database.session() as session:
            raw = await session.scalar(select(RawObject).where(RawObject.run_id == run_id))
        assert raw is not None
        ref = ObjectRef(uri=raw.uri, sha256=raw.sha256, size=raw.size)
        processing_group = runtime.group("processing")
        raw_before = _consumed("raw.ready", processing_group)
        features_before = _consumed("features.ready", runtime.group("prediction"))
        # Deliver the raw-data event twice more, as Kafka may after a rebalance.
        for _ in range(2):
            await runtime.bus.publish(
                Envelope.wrap(
                    RawDataReady(as_of=AS_OF, bars=ref, rows=raw.rows),
                    run_id=run_id,
                    symbol="AAA",
                )
            )
        await eventually(lambda: _consumed("raw.ready", processing_group) == raw_before + 2)
        async with runtime.database.session() as session:
            predictions = await session.scalar(
                select(func.count()).select_from(Prediction).where(Prediction.run_id == run_id)
            )
            features = await session.scalar(
                select(func.count()).select_from(FeatureSet).where(FeatureSet.run_id == run_id)
            )
        assert (predictions, features) == (1, 1)
        assert _consumed("features.ready", runtime.group("prediction")) == features_before
        assert (await api.get("/v1/predictions/AAA/latest")).json() == first


@pytest.fixture
async def pipeline_without_ingestion(
    settings: PipelineSettings,
) -> AsyncIterator[tuple[FastAPI, list[Record]]]:
    """Orchestrator, processing and prediction, plus a reader of raw.ready's dead letters."""
    runtime = Runtime(settings, service="pipeline", relay_all=True)
    dead: list[Record] = []

    async def collect(record: Record) -> None:
        dead.append(record)

    runtime.bus.subscribe(
        Subscription(topic="raw.ready.dlq", group=runtime.group("dlq-reader"), raw_handler=collect)
    )
    app = create_app(
        runtime,
        [
            orchestrator(runtime, settings),
            processing(runtime, settings),
            prediction(runtime, settings),
        ],
        title="test",
    )
    async with app.router.lifespan_context(app):
        yield app, dead


async def test_object_with_wrong_checksum_is_dead_lettered_and_other_symbols_go_on(
    pipeline_without_ingestion: tuple[FastAPI, list[Record]],
) -> None:
    app, dead = pipeline_without_ingestion
    runtime: Runtime = app.state.runtime
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as api:
        await _send_reader_key(api, runtime)
        run_id = (
            await api.post(
                "/v1/runs", json={"as_of": AS_OF.isoformat(), "symbols": ["BAD", "GOOD"]}
            )
        ).json()["id"]
        market = SimulatedMarket(seed=7)
        async with runtime.transaction() as session:
            for symbol in ("BAD", "GOOD"):
                ref = await runtime.store.put(
                    f"raw/test/{run_id}/{symbol}.parquet",
                    to_parquet_bytes(market.daily_bars(symbol, as_of=AS_OF, days=MIN_BARS)),
                )
                if symbol == "BAD":
                    ref = ObjectRef(uri=ref.uri, sha256="0" * 64, size=ref.size)
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
        run = await _finished(api, run_id)
        good = (await api.get("/v1/predictions/GOOD/latest")).json()

    assert good["run_id"] == run_id
    assert run["state"] == "FAILED"  # one of two symbols is over the 1% threshold
    assert [(f["symbol"], f["stage"]) for f in run["failed"]] == [("BAD", "process")]  # type: ignore[attr-defined]
    assert "checksum mismatch" in run["failed"][0]["last_error"]  # type: ignore[index]
    await eventually(lambda: len(dead) == 1)
    assert dead[0].key == "BAD"
    assert "ObjectIntegrityError: checksum mismatch" in (dead[0].header("x-dlq-error") or "")
    assert dead[0].header("x-dlq-original-topic") == runtime.bus.topic_name("raw.ready")


def _write_bring_your_own_data(root: Path) -> None:
    """Bars and texts for four symbols: one clean, one dirty but usable, one unusable, and one
    whose bars are all dated on weekends."""
    market = SimulatedMarket(seed=11)
    (root / "bars").mkdir(parents=True)
    (root / "texts").mkdir()
    for symbol in ("CLEAN", "DIRTY", "BROKEN", "CLOSED"):
        bars = market.daily_bars(symbol, as_of=AS_OF, days=MIN_BARS)
        texts = market.texts(symbol, as_of=AS_OF, days=MIN_BARS)[["id", "published_at", "text"]]
        if symbol == "DIRTY":
            bad_price = bars.iloc[[5]].assign(close=-1.0)
            duplicate = bars.iloc[[10]]
            bars = pd.concat([bars.iloc[::-1], bad_price, duplicate])  # out of order, too
            texts = pd.concat(
                [
                    texts,
                    pd.DataFrame(
                        {
                            "id": ["e1"],
                            "published_at": [texts["published_at"].iloc[-1]],
                            "text": ["   "],
                        }
                    ),
                ]
            )
        if symbol == "BROKEN":
            bars = bars.drop(columns=["volume"])
        if symbol == "CLOSED":
            bars = bars.tail(2).assign(date=[dt.date(2026, 11, 14), dt.date(2026, 11, 15)])
        bars.to_csv(root / "bars" / f"{symbol}.csv", index=False)
        texts.to_parquet(root / "texts" / f"{symbol}.parquet", index=False)


async def test_bring_your_own_files_are_cleaned_with_reasons_and_unusable_ones_fail_alone(
    settings: PipelineSettings, tmp_path: Path
) -> None:
    _write_bring_your_own_data(tmp_path / "data")
    files_settings = settings.model_copy(
        update={"source": "files", "files_root": tmp_path / "data"}
    )
    app = build_pipeline_app(files_settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api,
    ):
        await _send_reader_key(api, app.state.runtime)
        run_id = (
            await api.post(
                "/v1/runs",
                json={
                    "as_of": AS_OF.isoformat(),
                    "symbols": ["CLEAN", "DIRTY", "BROKEN", "CLOSED"],
                },
            )
        ).json()["id"]
        run = await _finished(api, run_id)
        for symbol in ("CLEAN", "DIRTY"):
            latest = (await api.get(f"/v1/predictions/{symbol}/latest")).json()
            assert latest["run_id"] == run_id

    failed = {f["symbol"]: f for f in run["failed"]}  # type: ignore[attr-defined]
    assert {(s, f["stage"]) for s, f in failed.items()} == {
        ("BROKEN", "ingest"),
        ("CLOSED", "ingest"),
    }
    assert "volume" in failed["BROKEN"]["last_error"]
    assert "files has no bars for CLOSED up to 2026-11-20" in failed["CLOSED"]["last_error"]
    cleaned = {(c["symbol"], c["stage"]): c["notes"] for c in run["cleaned"]}  # type: ignore[attr-defined]
    assert set(cleaned) == {("DIRTY", "ingest"), ("CLOSED", "ingest")}
    # The failed symbol keeps the note that says why it has no bars.
    assert cleaned[("CLOSED", "ingest")] == [
        "CLOSED: dropped 2 rows dated on days XNYS does not trade: 2026-11-14, 2026-11-15"
    ]
    reasons = " | ".join(cleaned[("DIRTY", "ingest")])
    for expected in ("negative price", "repeating a later row", "out of order", "empty body"):
        assert expected in reasons, reasons
