"""Run one service's app under uvicorn; `python -m marketsense.common.serve` runs the service
`MARKETSENSE_SERVICE` names."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import uvicorn

from marketsense.common.http_protocol import header_timeout_protocol
from marketsense.common.settings import CommonSettings

SERVICES = (
    "orchestrator",
    "ingestion",
    "processing",
    "prediction",
    "monitoring",
    "registry",
    "retraining",
)
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
        **server_options(CommonSettings()),
    )


def server_options(settings: CommonSettings) -> dict[str, Any]:
    """uvicorn's options for a service: no access log (requests are metrics), graceful shutdown,
    and the settings' keep-alive and header read timeouts."""
    return {
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": 30,
        "timeout_keep_alive": settings.http_keep_alive_seconds,
        # uvicorn has no header read timeout; this h11 protocol adds one.
        "http": header_timeout_protocol(settings.http_header_timeout_seconds),
    }


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
