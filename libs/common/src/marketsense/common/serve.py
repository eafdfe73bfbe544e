"""Run one service's app under uvicorn; `python -m marketsense.common.serve` runs the service
`MARKETSENSE_SERVICE` names."""

from __future__ import annotations

import importlib
import os
import sys

import uvicorn

SERVICES = ("orchestrator", "ingestion", "processing", "prediction", "monitoring", "registry")
"""Every service `marketsense serve` can run."""

DEFAULT_PORTS = {name: 8000 + i for i, name in enumerate(SERVICES)}
"""Port each service listens on unless `--port` or `MARKETSENSE_PORT` says otherwise."""

SERVICE_VARIABLE = "MARKETSENSE_SERVICE"
"""Names the service `python -m marketsense.common.serve` runs; each image sets it."""


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


def main() -> None:
    """Serve the service `MARKETSENSE_SERVICE` names; exit 2 with one line if it names none."""
    service = os.environ.get(SERVICE_VARIABLE, "")
    if service not in SERVICES:
        given = f"is {service!r}, not a service" if service else "is not set"
        print(
            f"{SERVICE_VARIABLE} {given}: set it to one of {', '.join(SERVICES)}", file=sys.stderr
        )
        raise SystemExit(2)
    serve(service)


if __name__ == "__main__":
    main()
