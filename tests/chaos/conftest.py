"""Fixtures of the fault tests: a fresh database per module and a deployment per test."""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path

import pytest

from marketsense.common.auth import Role
from marketsense.common.db.engine import Database
from tests.chaos.deployment import (
    PIPELINE,
    Deployment,
    service_environment,
)
from tests.conftest import infra, migrated_pg_database
from tests.model_registry_rows import new_api_key

FULL_SIZE = 1000
"""Symbols per run in the issue's fault scenarios."""

SYMBOL_COUNT = int(os.environ.get("MARKETSENSE_CHAOS_SYMBOLS", "100"))
"""Symbols per run: `MARKETSENSE_CHAOS_SYMBOLS`, else 100 so that the six scenarios fit the test
command's time budget on a 2-core machine; run with 1000 (`FULL_SIZE`) for the figures."""

CHAOS_SEED = int(os.environ.get("MARKETSENSE_CHAOS_SEED") or random.randrange(2**31))
"""Seed of the random moments the crashes strike at: `MARKETSENSE_CHAOS_SEED`, else a new one;
each crash test prints it, so a run that failed can be repeated with the same moments."""

Deploy = Callable[..., Awaitable[Deployment]]
"""Starts the pipeline: `await deploy(ingestion_env={...}, replicas=("processing-2",))`."""


@pytest.fixture(scope="module")
async def chaos_database_url() -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database for one module's faults."""
    async with migrated_pg_database(
        infra("MARKETSENSE_TEST_PG_DSN"), prefix="marketsense_chaos"
    ) as url:
        yield url


@pytest.fixture
async def chaos_database(chaos_database_url: str) -> AsyncIterator[Database]:
    """The module's database, as the test's own client."""
    database = Database(chaos_database_url)
    yield database
    await database.dispose()


async def start_deployment(
    *,
    database_url: str,
    database: Database,
    logs_dir: Path,
    prefix: str,
    predictor_dir: Path,
    sentiment_model_dir: Path,
    ingestion_env: Mapping[str, str] | None = None,
    replicas: tuple[str, ...] = (),
    common_env: Mapping[str, str] | None = None,
) -> Deployment:
    """Start every pipeline service as a process on its own topics and objects."""
    env = service_environment(
        database_url=database_url,
        prefix=prefix,
        predictor_dir=predictor_dir,
        sentiment_model_dir=sentiment_model_dir,
        home=logs_dir / "home",
    ) | dict(common_env or {})
    key = await new_api_key(database, role=Role.PUBLISHER)
    deployment = Deployment(env=env, logs_dir=logs_dir, database=database, api_key=key)
    for name in (*PIPELINE, *replicas):
        deployment.start(name, ingestion_env if name == "ingestion" else None)
    return deployment


@pytest.fixture
async def deploy(
    chaos_database_url: str,
    chaos_database: Database,
    tmp_path: Path,
    prefix: str,
    predictor_dir: Path,
    sentiment_model_dir: Path,
) -> AsyncIterator[Deploy]:
    """Start every pipeline service as a process on its own topics and objects; stop them after."""
    made: list[Deployment] = []

    async def start(
        *,
        ingestion_env: Mapping[str, str] | None = None,
        replicas: tuple[str, ...] = (),
        common_env: Mapping[str, str] | None = None,
    ) -> Deployment:
        deployment = await start_deployment(
            database_url=chaos_database_url,
            database=chaos_database,
            logs_dir=tmp_path,
            prefix=prefix,
            predictor_dir=predictor_dir,
            sentiment_model_dir=sentiment_model_dir,
            ingestion_env=ingestion_env,
            replicas=replicas,
            common_env=common_env,
        )
        made.append(deployment)
        return deployment

    yield start
    for deployment in made:
        deployment.stop_all()
