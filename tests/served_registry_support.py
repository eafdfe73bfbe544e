"""The real registry app served on loopback, and the `marketsense` command run against it: for
the registry client's suite and the `models` and `keys` commands' suites."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from typer.testing import Result

from marketsense.common.runtime import Runtime
from marketsense.common.store import store_from_settings
from marketsense.registry.app import build_app
from marketsense.registry.client import RegistryClient
from marketsense.registry.config import RegistrySettings
from tests.cli_support import invoke
from tests.conftest import INTEGRATION
from tests.gate_support import add_outcome_set, weighted_predictor
from tests.registry_support import registry_settings

BACKENDS = ["sqlite-file", pytest.param("postgres-s3", marks=INTEGRATION)]
"""Parameters of a suite's `registry` fixture: SQLite and a folder, or PostgreSQL and S3."""

MakePredictor = Callable[[float], Path]
"""Writes a predictor artifact folder whose manifest claims the given holdout AUC."""


@dataclass(frozen=True)
class ServedRegistry:
    """A registry served on loopback and where its state lives."""

    url: str
    database_url: str
    settings: RegistrySettings


@dataclass(frozen=True)
class Keys:
    """One key of each role, made with `marketsense keys create`."""

    reader: str
    publisher: str
    approver: str


@contextlib.contextmanager
def served_registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServedRegistry]:
    """The real registry app under uvicorn in a thread, on a free loopback port, on the
    backends `request.param` names."""
    if request.param == "postgres-s3":
        # Evaluation sets are registry-wide state: a database of its own per test.
        database_url: str = request.getfixturevalue("fresh_pg_database_url")
        store_url = f"s3://marketsense-test/{uuid.uuid4().hex[:10]}"
    else:
        database_url = f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"
        store_url = (tmp_path / "objects").as_uri()
    settings = registry_settings(
        home=tmp_path / "home",
        database_url=database_url,
        store_url=store_url,
        # Revocations take effect at once, so a test can see them without waiting.
        api_key_cache_seconds=0,
    )
    # A socket listening before the server starts: early requests queue instead of failing.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(
        uvicorn.Config(build_app(settings), log_config=None, access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        # Answered once startup (storage, migrations on SQLite) has finished.
        assert httpx.get(f"{url}/healthz", timeout=60).status_code == 200
        asyncio.run(_add_outcome_set(settings))
        yield ServedRegistry(url=url, database_url=database_url, settings=settings)
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()
    assert not thread.is_alive(), "the registry did not shut down"


def run(
    registry: ServedRegistry, key: str | None, *args: str, env: dict[str, str] | None = None
) -> Result:
    """Invoke `marketsense ARGS` against the registry; the key must never appear in any output."""
    environment = {
        "MARKETSENSE_REGISTRY_URL": registry.url,
        "MARKETSENSE_DATABASE_URL": registry.database_url,
        **(env or {}),
    }
    return invoke(*args, key=key, env=environment)


def made_keys(registry: ServedRegistry) -> Keys:
    """A key of each role, under names no other test uses."""
    made = {}
    for role in ("reader", "publisher", "approver"):
        result = run(
            registry, None, "keys", "create", f"{role}-{uuid.uuid4().hex[:6]}", "--role", role
        )
        assert result.exit_code == 0, result.stderr
        made[role] = result.stdout.strip()
    return Keys(**made)


def predictor_maker(tmp_path: Path) -> MakePredictor:
    """Write predictor artifact folders whose manifests claim the given holdout AUC; a higher
    claim is also a better graph on the registry's evaluation set."""
    return lambda auc: weighted_predictor(
        tmp_path / f"predictor-{uuid.uuid4().hex[:6]}", skill=30 * (auc - 0.5), claimed_auc=auc
    )


def model_name() -> str:
    """A model name no other test uses."""
    return f"predictor-{uuid.uuid4().hex[:8]}"


async def _add_outcome_set(settings: RegistrySettings) -> None:
    """Give the registry the predictor evaluation set the test predictors are measured on."""
    runtime = Runtime(settings, service="registry")
    await runtime.store.start()
    try:
        await add_outcome_set(runtime)
    finally:
        await runtime.store.close()
        await runtime.database.dispose()


def push(registry: ServedRegistry, keys: Keys, name: str, folder: Path) -> int:
    """Push a folder through the CLI (registering the model if needed); the version it became."""
    result = run(registry, keys.publisher, "models", "push", name, str(folder), "--create")
    assert result.exit_code == 0, result.stderr
    with RegistryClient(registry.url, keys.reader) as client:
        return max(v.version for v in client.list_versions(name))


def tamper(registry: ServedRegistry, key: str) -> None:
    """Overwrite a stored object behind the registry's back, as damage at rest would."""

    async def go() -> None:
        store = store_from_settings(registry.settings)
        await store.start()
        try:
            data = await store.read_key(key)
            await store.put(key, data[:-8] + b"tampered")
        finally:
            await store.close()

    asyncio.run(go())


def production(registry: ServedRegistry, keys: Keys, name: str) -> int | None:
    """The version `production` names, read through the API."""
    with RegistryClient(registry.url, keys.reader) as client:
        return client.get_model(name).aliases.get("production")
