"""The registry app on a test's database and object store, with keys of every role, and small
predictor artifacts to push to it."""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

from marketsense.common.app import create_app
from marketsense.common.auth import Role, create_key, revoke_key
from marketsense.common.bus import Subscription
from marketsense.common.db.engine import Database
from marketsense.common.events import Envelope, ModelPromoted, Payload
from marketsense.common.features import FEATURE_COLUMNS, FEATURE_SCHEMA
from marketsense.common.runtime import Runtime
from marketsense.common.store import ObjectStore
from marketsense.common.store.s3 import S3Store
from marketsense.prediction.model import PredictorManifest, write_artifact
from marketsense.registry.app import create_component
from marketsense.registry.bundles import pack_bundle
from marketsense.registry.config import RegistrySettings
from tests.conftest import infra

WINDOW = "simulated 2026-06-01..2026-09-30"
"""Evaluation window of the test predictors unless a test says otherwise."""


@functools.cache
def predictor_graph(features: tuple[str, ...] = FEATURE_COLUMNS) -> tuple[bytes, str]:
    """A logistic regression on random data exported to ONNX, and its input name (built once)."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(300, len(features))).astype(np.float32)
    y = (x[:, 0] + 0.5 * rng.normal(size=len(x)) > 0).astype(int)
    model = LogisticRegression(max_iter=500).fit(x, y)
    graph = to_onnx(model, x[:1], options={"zipmap": False}, target_opset=17)
    return graph.SerializeToString(), graph.graph.input[0].name


def write_predictor(
    directory: Path, *, auc: float = 0.6, window: str | None = WINDOW, **manifest: Any
) -> Path:
    """A valid predictor folder (model.onnx, manifest.json); `manifest` overrides its fields."""
    onnx_bytes, input_name = predictor_graph()
    fields: dict[str, Any] = {
        "name": "named-by-the-trainer",
        "version": "0.0.1-local",
        "feature_schema": FEATURE_SCHEMA,
        "features": list(FEATURE_COLUMNS),
        "input_name": input_name,
        "probability_output": "probabilities",
        "metrics": {"holdout_auc": auc, "holdout_accuracy": 0.55},
        "evaluation_window": window,
    } | manifest
    write_artifact(directory, onnx_bytes=onnx_bytes, manifest=PredictorManifest(**fields))
    return directory


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Registry:
    """A running registry app: an HTTP client on it, its runtime, keys and the events it sent."""

    api: httpx.AsyncClient
    runtime: Runtime
    keys: dict[str, str]
    """Keys by holder: reader, publisher, approver, and a revoked approver key."""
    promoted: list[ModelPromoted]
    """ModelPromoted events as a consumer on the runtime's bus received them."""

    def key(self, holder: str) -> dict[str, str]:
        """Headers sending the key of `holder`."""
        return {"X-API-Key": self.keys[holder]}

    async def create_model(
        self, name: str, *, kind: str = "predictor", holder: str = "publisher"
    ) -> httpx.Response:
        """Register a model."""
        return await self.api.post(
            "/v1/models",
            json={"name": name, "kind": kind, "description": f"{kind} for tests"},
            headers=self.key(holder),
        )

    async def push(
        self, name: str, folder: Path, *, holder: str = "publisher", bundle: bytes | None = None
    ) -> httpx.Response:
        """Push a folder (its manifest.json and the packed bundle, or the `bundle` given)."""
        return await self.push_parts(
            name,
            manifest=(folder / "manifest.json").read_bytes(),
            bundle=pack_bundle(folder) if bundle is None else bundle,
            holder=holder,
        )

    async def push_parts(
        self, name: str, *, manifest: bytes, bundle: bytes, holder: str = "publisher"
    ) -> httpx.Response:
        """Push a manifest and a bundle as they are."""
        return await self.api.post(
            f"/v1/models/{name}/versions",
            files={
                "manifest": ("manifest.json", manifest, "application/json"),
                "bundle": ("bundle.tar.gz", bundle, "application/gzip"),
            },
            headers=self.key(holder),
        )

    async def promote(
        self,
        name: str,
        version: int,
        *,
        alias: str = "production",
        holder: str = "approver",
        reason: str = "",
        force: bool = False,
    ) -> httpx.Response:
        """Point an alias at a version."""
        return await self.api.put(
            f"/v1/models/{name}/aliases/{alias}",
            json={"version": version, "reason": reason, "force": force},
            headers=self.key(holder),
        )


def registry_settings(
    *, home: Path, database_url: str, store: ObjectStore, **values: Any
) -> RegistrySettings:
    """Settings pointing the registry at a test's database and object store."""
    fields: dict[str, Any] = {
        "home": home,
        "database_url": database_url,
        "object_store_url": store.base_uri,
        "log_json": False,
    }
    if isinstance(store, S3Store):
        fields |= {
            "s3_endpoint_url": infra("MARKETSENSE_TEST_S3_ENDPOINT"),
            "s3_access_key_id": "test",
            "s3_secret_access_key": "test",
        }
    return RegistrySettings(**(fields | values))


@contextlib.asynccontextmanager
async def running_registry(
    *, database: Database, settings: RegistrySettings
) -> AsyncIterator[Registry]:
    """Start the registry app with keys of every role in its database."""
    keys: dict[str, str] = {}
    async with database.session() as session:
        for role in Role:
            keys[role.value] = await create_key(session, name=f"{role.value}-key", role=role)
        keys["revoked"] = await create_key(session, name="revoked-key", role=Role.APPROVER)
        await revoke_key(session, "revoked-key")
        await session.commit()
    runtime = Runtime(settings, service="registry")
    promoted: list[ModelPromoted] = []

    async def collect(_envelope: Envelope, payload: Payload) -> None:
        assert isinstance(payload, ModelPromoted)
        promoted.append(payload)

    runtime.bus.subscribe(
        Subscription(
            topic=ModelPromoted.topic,
            group=runtime.group("promotion-watcher"),
            handler=collect,
            accepts=(ModelPromoted,),
        )
    )
    app = create_app(runtime, [create_component(runtime, settings)], title="registry under test")
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://registry"
        ) as api,
    ):
        yield Registry(api=api, runtime=runtime, keys=keys, promoted=promoted)
