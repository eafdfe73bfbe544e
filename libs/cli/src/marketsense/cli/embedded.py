"""The whole pipeline in one process on the embedded default (or any configured infrastructure)."""

from __future__ import annotations

from fastapi import FastAPI

from marketsense.common.app import create_app
from marketsense.common.runtime import Runtime
from marketsense.ingestion.app import create_component as ingestion
from marketsense.ingestion.config import IngestionSettings
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
):
    """Every pipeline service's settings in one object, for running them in one process."""


def build_pipeline_app(settings: PipelineSettings | None = None) -> FastAPI:
    """One app with the orchestrator, ingestion, processing, prediction and registry."""
    settings = settings or PipelineSettings()
    runtime = Runtime(settings, service="pipeline", relay_all=True)
    components = [
        orchestrator(runtime, settings),
        ingestion(runtime, settings),
        processing(runtime, settings),
        prediction(runtime, settings),
        registry(runtime, settings),
    ]
    return create_app(runtime, components, title="marketsense pipeline")
