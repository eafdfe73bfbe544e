"""Which variant the gate measured for a version, and the warnings a production move earns when
no running replica serves the model or replicas serve another variant than the gate measured."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from marketsense.common.db.models import ModelServing, ModelVersion
from marketsense.common.runtime import Runtime
from marketsense.models.versions import StoredFile, dump_files
from marketsense.registry.config import RegistrySettings
from marketsense.registry.serving import gated_variant, promotion_warnings
from tests.model_registry_rows import register_version
from tests.registry_support import Registry

NOW = dt.datetime(2026, 11, 20, 21, 30, tzinfo=dt.UTC)


def _version(*names: str) -> ModelVersion:
    files = [StoredFile(name=n, uri=f"models/m/1/{n}", sha256="0" * 64, size=1) for n in names]
    return ModelVersion(model_name="m", version=1, files=dump_files(files))


def test_the_gate_measures_int8_only_for_sentiment_bundles_that_ship_it_when_configured() -> None:
    both = _version("manifest.json", "model.onnx", "model.int8.onnx", "tokenizer.json")
    fp32_only = _version("manifest.json", "model.onnx", "tokenizer.json")

    assert gated_variant("sentiment", both, "int8") == "int8"
    assert gated_variant("sentiment", fp32_only, "int8") == "fp32"
    assert gated_variant("sentiment", both, "fp32") == "fp32"
    assert gated_variant("predictor", both, "int8") == "fp32"


def _sentiment_folder(directory: Path) -> Path:
    """A sentiment bundle's file names (contents do not matter to what is checked here)."""
    directory.mkdir()
    (directory / "manifest.json").write_text(json.dumps({"kind": "sentiment"}))
    for name in ("model.onnx", "model.int8.onnx", "tokenizer.json"):
        (directory / name).write_bytes(b"x")
    return directory


async def _report(
    runtime: Runtime, replica: str, model: str, variant: str, *, age: float = 5.0
) -> None:
    async with runtime.transaction() as session:
        session.add(
            ModelServing(
                replica=replica,
                model_name=model,
                service="processing",
                version="1",
                variant=variant,
                source="registry",
                reported_at=NOW - dt.timedelta(seconds=age),
            )
        )


async def _warnings(runtime: Runtime, name: str, *, alias: str = "production") -> list[str]:
    settings = RegistrySettings(registry_serving_stale_seconds=60)
    async with runtime.database.session() as session:
        return await promotion_warnings(
            session, name=name, alias=alias, version=1, settings=settings, now=NOW
        )


async def test_a_promotion_nobody_serves_names_the_setting_that_chooses_the_served_model(
    registry: Registry, tmp_path: Path
) -> None:
    runtime = registry.runtime
    await register_version(
        runtime, name="finbert", kind="sentiment", folder=_sentiment_folder(tmp_path / "b")
    )
    await _report(runtime, "p:1", "minilm-sentiment", "int8")
    # A replica that stopped reporting two minutes ago no longer counts.
    await _report(runtime, "p:2", "finbert", "int8", age=120)

    (warning,) = await _warnings(runtime, "finbert")

    assert "no running service reported serving finbert in the last 60 s" in warning
    assert "MARKETSENSE_SENTIMENT_MODEL" in warning
    assert "its replicas serve minilm-sentiment" in warning
    assert await _warnings(runtime, "finbert", alias="staging") == []


async def test_replicas_serving_another_variant_than_the_gate_measured_are_named(
    registry: Registry, tmp_path: Path
) -> None:
    runtime = registry.runtime
    await register_version(
        runtime, name="finbert", kind="sentiment", folder=_sentiment_folder(tmp_path / "b")
    )
    await _report(runtime, "p:1", "finbert", "int8")
    assert await _warnings(runtime, "finbert") == []

    await _report(runtime, "p:2", "finbert", "fp32")
    (warning,) = await _warnings(runtime, "finbert")

    assert "replicas p:2 serve variant fp32 but the gate measured int8" in warning
    assert "MARKETSENSE_SENTIMENT_QUANTIZED" in warning
