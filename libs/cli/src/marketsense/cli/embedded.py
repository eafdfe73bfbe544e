"""The whole pipeline in one process on the embedded default (or any configured infrastructure)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

from fastapi import FastAPI
from rich.console import Console

from marketsense.cli.bootstrap import ensure_models
from marketsense.cli.registration import ensure_registered
from marketsense.common.app import Component, create_app
from marketsense.common.auth import Role, create_key, revoke_key
from marketsense.common.registry_calls import InProcessTransport
from marketsense.common.runtime import Runtime
from marketsense.ingestion.app import create_component as ingestion
from marketsense.ingestion.config import IngestionSettings
from marketsense.ingestion.sources import simulated_market
from marketsense.monitoring.app import create_component as monitoring
from marketsense.monitoring.config import MonitoringSettings
from marketsense.orchestrator.app import create_component as orchestrator
from marketsense.orchestrator.config import OrchestratorSettings
from marketsense.prediction.app import create_component as prediction
from marketsense.prediction.config import PredictionSettings
from marketsense.processing.app import create_component as processing
from marketsense.processing.config import ProcessingSettings
from marketsense.registry.app import create_component as registry
from marketsense.registry.config import RegistrySettings
from marketsense.retraining.app import create_component as retraining
from marketsense.retraining.config import RetrainingSettings


class PipelineSettings(
    OrchestratorSettings,
    IngestionSettings,
    ProcessingSettings,
    PredictionSettings,
    RegistrySettings,
    MonitoringSettings,
    RetrainingSettings,
):
    """Every pipeline service's settings in one object, for running them in one process."""


def build_pipeline_app(settings: PipelineSettings | None = None) -> FastAPI:
    """One app with the orchestrator, ingestion, processing, prediction, registry, monitoring
    and retraining; the services that change the registry call its API in this process."""
    settings = settings or PipelineSettings()
    runtime = Runtime(settings, service="pipeline", relay_all=True)
    transport = InProcessTransport()
    components = pipeline_components(runtime, settings, transport)
    app = create_app(runtime, list(components.values()), title="marketsense pipeline")
    transport.app = app
    return app


def pipeline_components(
    runtime: Runtime, settings: PipelineSettings, transport: InProcessTransport
) -> dict[str, Component]:
    """Every service's component on one runtime, by service name, in start-up order; the
    monitoring and retraining ones reach the registry through `transport`."""
    return {
        "registry_access": registry_access(runtime, transport),
        "orchestrator": orchestrator(runtime, settings),
        "ingestion": ingestion(runtime, settings),
        "processing": processing(runtime, settings),
        "prediction": prediction(runtime, settings),
        "registry": registry(runtime, settings),
        "monitoring": monitoring(runtime, settings, registry_transport=transport),
        "retraining": retraining(runtime, settings, registry_transport=transport),
    }


def registry_access(runtime: Runtime, transport: InProcessTransport) -> Component:
    """An approver key for the in-process registry calls, made at start-up, revoked at stop."""
    name = f"embedded-pipeline-{uuid.uuid4().hex[:8]}"

    async def make_key() -> None:
        async with runtime.transaction() as session:
            transport.api_key = await create_key(session, name=name, role=Role.APPROVER)

    async def revoke() -> None:
        transport.api_key = None
        async with runtime.transaction() as session:
            await revoke_key(session, name)

    return Component(name="registry_access", state=transport, on_start=[make_key], on_stop=[revoke])


async def prepare_models(settings: PipelineSettings, *, as_of: dt.date, console: Console) -> None:
    """Build the default models under the home if missing (trained on days before `as_of`) and
    register them as production, so the services serve what the registry names, as deployed."""
    await asyncio.to_thread(
        ensure_models,
        sentiment_dir=settings.resolved_sentiment_model_path(),
        predictor_dir=settings.resolved_predictor_path(),
        as_of=as_of,
        market=simulated_market(settings),
        console=console,
    )
    await ensure_registered(
        settings,
        [
            ("sentiment", settings.resolved_sentiment_model_path()),
            ("predictor", settings.resolved_predictor_path()),
        ],
        console,
    )
