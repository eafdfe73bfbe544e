"""Run one service's app under uvicorn."""

from __future__ import annotations

import importlib
import os

import uvicorn

SERVICES = ("orchestrator", "ingestion", "processing", "prediction", "monitoring", "registry")
"""Every service `marketsense serve` can run."""

DEFAULT_PORTS = {name: 8000 + i for i, name in enumerate(SERVICES)}
"""Port each service listens on unless `--port` or `MARKETSENSE_PORT` says otherwise."""


def serve(service: str, *, host: str | None = None, port: int | None = None) -> None:
    """Serve a service until SIGTERM or SIGINT, then shut down gracefully."""
    if service not in SERVICES:
        raise SystemExit(f"unknown service {service!r}: choose one of {', '.join(SERVICES)}")
    module = importlib.import_module(f"marketsense.{service}.app")
    uvicorn.run(
        module.build_app,
        factory=True,
        host=host or os.environ.get("MARKETSENSE_HOST", "127.0.0.1"),
        port=port or int(os.environ.get("MARKETSENSE_PORT", DEFAULT_PORTS[service])),
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
    )
