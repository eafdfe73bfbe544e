"""Services following the registry's production alias live: apps, backends, served-model metrics.

Shared by the suites of `LiveModel` and of the services that serve through it (prediction,
processing).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from marketsense.common.app import create_app
from marketsense.common.features import FEATURE_COLUMNS
from marketsense.common.runtime import Runtime
from marketsense.models.predictor import OnnxPredictor
from marketsense.prediction.app import create_component as prediction
from marketsense.prediction.config import PredictionSettings
from tests.backends import real_servers

Clients = Callable[[FastAPI], httpx.AsyncClient]
"""Makes a client of an app under test."""


def live_backend(request: pytest.FixtureRequest, tmp_path: Path, prefix: str) -> dict[str, object]:
    """Settings of the embedded default (SQLite, folder, in-process bus), or of the real servers
    when `request.param` is `real`."""
    values: dict[str, object] = {
        "home": tmp_path / "home",
        "handler_retry_base_seconds": 0.01,
        # Promotions arrive as events; tests of the periodic check shorten it themselves.
        "model_poll_seconds": 3600,
    }
    if request.param == "real":
        values |= real_servers(
            database_url=request.getfixturevalue("fresh_pg_database_url"), prefix=prefix
        )
    return values


@contextlib.asynccontextmanager
async def app_clients() -> AsyncIterator[Clients]:
    """Clients for apps under test, closed afterwards."""
    clients: list[httpx.AsyncClient] = []

    def client(app: FastAPI) -> httpx.AsyncClient:
        made = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        clients.append(made)
        return made

    try:
        yield client
    finally:
        for made in clients:
            await made.aclose()


def unique(stem: str) -> str:
    """A model name no other test uses."""
    return f"{stem}-{uuid.uuid4().hex[:8]}"


def symbols(count: int) -> list[str]:
    """Symbols no other test uses (tests on PostgreSQL share one database)."""
    tag = uuid.uuid4().hex[:6].upper()
    return [f"L{tag}{i}" for i in range(count)]


def _sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def served(
    service: str, model: str, version: str, source: str = "registry", variant: str | None = None
) -> float | None:
    """`marketsense_model_info` of a served version (of `variant`, or of whichever variant it
    runs when None): 1 while served, None otherwise."""
    labels = {"service": service, "model": model, "version": version, "source": source}
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name != "marketsense_model_info":
                continue
            if labels.items() <= sample.labels.items() and variant in (
                None,
                sample.labels["variant"],
            ):
                return sample.value
    return None


def failures(service: str, model: str, version: str) -> float:
    """How often a service failed to load a version."""
    return (
        _sample(
            "marketsense_model_load_failures_total", service=service, model=model, version=version
        )
        or 0.0
    )


def swaps(service: str, model: str) -> float:
    """How often a service replaced the model it served."""
    return _sample("marketsense_model_swaps_total", service=service, model=model) or 0.0


def prediction_app(tmp_path: Path, name: str, **values: object) -> FastAPI:
    """The prediction app following model `name`, with no local folder unless `values` (which
    override any setting) name one."""
    settings = PredictionSettings.model_validate(
        {
            "home": tmp_path / "home",
            "predictor_model": name,
            "predictor_path": tmp_path / "no-local-model",
            "model_poll_seconds": 3600,
        }
        | values
    )
    runtime = Runtime(settings, service="prediction")
    return create_app(runtime, [prediction(runtime, settings)], title="test prediction")


async def latest_versions(client: httpx.AsyncClient, symbols: list[str], key: str) -> list[str]:
    """The model version of each symbol's latest prediction ("" where there is none)."""
    versions = []
    for symbol in symbols:
        response = await client.get(f"/v1/predictions/{symbol}/latest", headers={"X-API-Key": key})
        versions.append(response.json()["model_version"] if response.status_code == 200 else "")
    return versions


def all_at(
    client: httpx.AsyncClient, symbols: list[str], key: str, version: str
) -> Callable[[], Awaitable[bool]]:
    """A check that every symbol's latest prediction is by `version`."""

    async def check() -> bool:
        return await latest_versions(client, symbols, key) == [version] * len(symbols)

    return check


def expected(directory: Path, rows: dict[str, pd.DataFrame], symbol: str) -> float:
    """The probability the predictor in `directory` gives a symbol's feature row."""
    features = rows[symbol][list(FEATURE_COLUMNS)].to_numpy(np.float32)
    return float(OnnxPredictor(directory).predict_up(features)[0])
