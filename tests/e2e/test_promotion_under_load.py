"""Promotions reach a loaded prediction service: the new version within 5 s, no failed request."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from marketsense.common.auth import Role
from marketsense.common.db.engine import Database
from marketsense.common.db.models import Prediction, Run
from marketsense.common.features import FEATURE_COLUMNS
from marketsense.common.states import RunState
from marketsense.common.store import ObjectStore
from marketsense.models.bundles import pack_bundle
from tests.backends import as_environment, real_servers, s3_store
from tests.conftest import TEST_AS_OF, eventually
from tests.e2e.processes import Services, running_services, scraped_by_prometheus
from tests.model_registry_rows import add_features, new_api_key

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

SYMBOLS = [f"L{i:02d}" for i in range(20)]
CLIENTS = 8
"""Concurrent callers of `GET latest` during the promotions."""


class Load:
    """Callers hammering `GET latest`, recording when each answer came and which version it had."""

    def __init__(self, client: httpx.AsyncClient, url: str, key: str):
        self.client, self.url, self.headers = client, url, {"X-API-Key": key}
        self.answers: list[tuple[float, int, str]] = []
        self.errors: list[str] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def _caller(self, offset: int) -> None:
        i = offset
        while not self._stop.is_set():
            symbol = SYMBOLS[i % len(SYMBOLS)]
            i += 1
            try:
                response = await self.client.get(
                    f"{self.url}/v1/predictions/{symbol}/latest", headers=self.headers
                )
            except httpx.TransportError as exc:
                self.errors.append(f"{symbol}: {exc!r}")
                continue
            version = response.json().get("model_version", "") if response.is_success else ""
            self.answers.append((time.monotonic(), response.status_code, version))

    def start(self) -> None:
        """Start the callers."""
        self._tasks = [asyncio.create_task(self._caller(i)) for i in range(CLIENTS)]

    async def stop(self) -> None:
        """Stop the callers and wait for their last requests."""
        self._stop.set()
        await asyncio.gather(*self._tasks)

    def versions_since(self, moment: float) -> set[str]:
        """Versions answered after a moment."""
        return {version for at, _, version in self.answers if at > moment}


async def _seed_features_and_predictions(
    database: Database, store: ObjectStore, *, model_name: str, version: str
) -> None:
    """A finished run whose features are marked processed, each with a prediction by `version`."""
    run_id = str(uuid.uuid4())
    rng = np.random.default_rng(3)
    rows = {
        symbol: pd.DataFrame(
            [dict(zip(FEATURE_COLUMNS, rng.normal(size=len(FEATURE_COLUMNS)), strict=True))]
        )
        for symbol in SYMBOLS
    }
    async with database.session() as session:
        session.add(Run(id=run_id, as_of=TEST_AS_OF, state=RunState.SUCCESS, symbols=0))
        await session.flush()
        await add_features(session, store, run_id=run_id, as_of=TEST_AS_OF, rows=rows)
        session.add_all(
            Prediction(
                run_id=run_id,
                symbol=symbol,
                as_of=TEST_AS_OF,
                horizon_days=1,
                prob_up=0.5,
                signal="flat",
                model_name=model_name,
                model_version=version,
            )
            for symbol in SYMBOLS
        )
        await session.commit()


def _load_failures(metrics_text: str, model: str, version: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == "marketsense_model_load_failures_total"
        and sample.labels.get("model") == model
        and sample.labels.get("version") == version
    )


@dataclass
class _Models:
    """The served registry's routes for one model, called with an approver's key."""

    client: httpx.AsyncClient
    api: str
    model: str
    approver: dict[str, str]
    manifest: bytes
    bundle: bytes

    async def create(self) -> None:
        """Register the model."""
        created = await self.client.post(
            self.api,
            headers=self.approver,
            json={"name": self.model, "kind": "predictor", "description": ""},
        )
        assert created.status_code == 201, created.text

    pushes: int = 0

    async def push(self) -> str:
        """Push the artifact as the model's next version; its number. Each push notes its count
        in the manifest's lineage: identical content would return the earlier version."""
        self.pushes += 1
        manifest = json.loads(self.manifest)
        manifest["training"] = manifest.get("training", {}) | {"e2e_push": str(self.pushes)}
        response = await self.client.post(
            f"{self.api}/{self.model}/versions",
            headers=self.approver,
            files={
                "manifest": ("manifest.json", json.dumps(manifest).encode()),
                "bundle": ("b.tar.gz", self.bundle),
            },
        )
        assert response.status_code == 201, response.text
        return str(response.json()["version"])

    async def promote(self, version: str) -> None:
        """Point production at `version`, forced: this suite is about the live swap, and the
        registry has no predictor evaluation set to gate on."""
        response = await self.client.put(
            f"{self.api}/{self.model}/aliases/production",
            headers=self.approver,
            json={"version": int(version), "reason": "e2e live swap", "force": True},
        )
        assert response.status_code == 200, response.text


def _environment(settings: dict[str, str], home: Path, model: str) -> dict[str, str]:
    """The services' variables: real servers, serving `model` only as the registry names it."""
    return as_environment(
        settings
        | {
            "home": home / "home",
            "predictor_model": model,
            # No local fallback and a poll too slow to matter: only the event brings a version.
            "predictor_path": home / "no-local-model",
            "model_poll_seconds": 600,
            "log_level": "WARNING",
        }
    )


async def _alert_firing(client: httpx.AsyncClient, query: str, model: str) -> bool:
    """Whether Prometheus has the model-load alert firing for `model`."""
    result = await client.get(
        query,
        params={
            "query": 'ALERTS{alertname="MarketsenseModelLoadFailed",'
            f'alertstate="firing",model="{model}"}}'
        },
    )
    return bool(result.json()["data"]["result"])


@dataclass
class _Outcome:
    """What the load saw: its answers, how long the old version lasted, when the broken version
    was promoted, and the service's readiness afterwards."""

    load: Load
    switch_seconds: float
    broken_at: float
    ready: httpx.Response


async def _promote_under_load(
    models: _Models,
    store: ObjectStore,
    prediction: Services,
    *,
    reader: str,
    prefix: str,
    first: str,
    second: str,
) -> _Outcome:
    """Under load: promote `second`, then a version whose stored graph is broken."""
    client, model = models.client, models.model
    await prediction.wait_ready(client)
    load = Load(client, prediction.url("prediction"), reader)
    assert load.versions_since(0) == set()
    load.start()
    try:
        await eventually(lambda: load.versions_since(0) == {first}, timeout=10)

        await models.promote(second)
        promoted_at = time.monotonic()
        await eventually(lambda: load.versions_since(time.monotonic() - 1) == {second}, timeout=15)
        old_answers = [at for at, _, v in load.answers if v == first]
        switch_seconds = max(0.0, max(old_answers) - promoted_at)

        # A version whose stored bytes no longer match its checksum must not be served.
        third = await models.push()
        await store.put(f"models/{model}/{third}/model.onnx", b"not an onnx graph")
        await models.promote(third)
        broken_at = time.monotonic()

        async def refused() -> bool:
            text = (await client.get(f"{prediction.url('prediction')}/metrics")).text
            return _load_failures(text, model, third) >= 1

        await eventually(refused, timeout=30)

        # ... and the SREs' alert fires from what Prometheus scrapes.
        with scraped_by_prometheus(prediction.ports, prefix) as query:
            await eventually(lambda: _alert_firing(client, query, model), timeout=60, interval=0.5)
    finally:
        await load.stop()
    ready = await client.get(f"{prediction.url('prediction')}/readyz")
    return _Outcome(load, switch_seconds, broken_at, ready)


async def test_promotion_under_load_switches_every_answer_within_5_s_and_a_broken_one_is_refused(
    pg_database: Database,
    fresh_pg_database_url: str,
    tmp_path: Path,
    prefix: str,
    predictor_dir: Path,
) -> None:
    model = f"predictor-{uuid.uuid4().hex[:8]}"
    settings = real_servers(
        database_url=fresh_pg_database_url, prefix=prefix, bucket="marketsense-e2e"
    )
    env = _environment(settings, tmp_path, model)
    store = s3_store(settings["object_store_url"])
    await store.start()
    keys = {
        role: await new_api_key(pg_database, role=role) for role in (Role.READER, Role.APPROVER)
    }
    approver = {"X-API-Key": keys[Role.APPROVER]}

    # Three pushes of the same trained predictor, each with its own lineage note.
    folder = tmp_path / "artifact"
    shutil.copytree(predictor_dir, folder)
    manifest = (folder / "manifest.json").read_bytes()
    bundle = pack_bundle(folder)

    with running_services(("registry",), env, tmp_path) as registry:
        async with httpx.AsyncClient(timeout=30) as client:
            await registry.wait_ready(client)
            api = f"{registry.url('registry')}/v1/models"
            models = _Models(client, api, model, approver, manifest, bundle)
            await models.create()
            first = await models.push()
            await models.promote(first)
            await _seed_features_and_predictions(
                pg_database, store, model_name=model, version=first
            )
            second = await models.push()

            with running_services(("prediction",), env, tmp_path) as prediction:
                outcome = await _promote_under_load(
                    models,
                    store,
                    prediction,
                    reader=keys[Role.READER],
                    prefix=prefix,
                    first=first,
                    second=second,
                )
    load, switch_seconds, broken_at, ready = (
        outcome.load,
        outcome.switch_seconds,
        outcome.broken_at,
        outcome.ready,
    )

    await store.close()
    assert load.errors == []
    statuses = {status for _, status, _ in load.answers}
    assert statuses == {200}, f"failed answers under load: {statuses}"
    assert switch_seconds <= 5.0, (
        f"old version still answered {switch_seconds:.2f} s after promotion"
    )
    assert load.versions_since(broken_at) == {second}
    assert ready.status_code == 200
    summary = {
        "answers": len(load.answers),
        "switch_seconds": round(switch_seconds, 3),
    }
    print(json.dumps(summary))
