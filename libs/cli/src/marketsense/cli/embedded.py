"""The whole pipeline in one process on the embedded default (or any configured infrastructure)."""

from __future__ import annotations

import asyncio
import datetime as dt

from fastapi import FastAPI
from rich.console import Console

from marketsense.cli.bootstrap import ensure_models
from marketsense.cli.registration import ensure_registered
from marketsense.common.app import create_app
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


class PipelineSettings(
    OrchestratorSettings,
    IngestionSettings,
    ProcessingSettings,
    PredictionSettings,
    RegistrySettings,
    MonitoringSettings,
):
    """Every pipeline service's settings in one object, for running them in one process."""


def build_pipeline_app(settings: PipelineSettings | None = None) -> FastAPI:
    """One app with the orchestrator, ingestion, processing, prediction, registry and
    monitoring."""
    settings = settings or PipelineSettings()
    runtime = Runtime(settings, service="pipeline", relay_all=True)
    components = [
        orchestrator(runtime, settings),
        ingestion(runtime, settings),
        processing(runtime, settings),
        prediction(runtime, settings),
        registry(runtime, settings),
        monitoring(runtime, settings),
    ]
    return create_app(runtime, components, title="marketsense pipeline")


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
