"""Service factory: a FastAPI app with health, readiness, metrics, logs and graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from marketsense.common.http_errors import install_error_answers
from marketsense.common.logs import configure_logging
from marketsense.common.metrics import HTTP_REQUEST_SECONDS, method_label
from marketsense.common.request_guard import BodyLimit, GuardRules, RequestGuard
from marketsense.common.runtime import Runtime
from marketsense.common.settings import CommonSettings

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[bool]]
Hook = Callable[[], Awaitable[None]]
Loop = Callable[[], Awaitable[None]]
Describe = Callable[[dict[str, Any]], None]
Serving = Callable[[], dict[str, Any] | None]


@dataclass
class Component:
    """One service's part of an app: routes, readiness checks, and start/stop hooks."""

    name: str
    router: APIRouter | None = None
    state: object | None = None
    """What the component's routes depend on (its settings, a served model), kept on
    `app.state.<name>`: several components can share one app, each with its own."""
    ready_checks: dict[str, Check] = field(default_factory=dict)
    on_start: list[Hook] = field(default_factory=list)
    on_stop: list[Hook] = field(default_factory=list)
    loops: list[Loop] = field(default_factory=list)
    """Run as tasks while the app serves (after `on_start`), cancelled before `on_stop`."""
    describe: list[Describe] = field(default_factory=list)
    """Edit the OpenAPI document once it is built, to state what this deployment's settings
    make true (a limit, say): routes are declared once, before any settings exist."""
    body_limits: dict[Callable[..., Any], BodyLimit] = field(default_factory=dict)
    """Body limits of routes (by endpoint function) that need another than
    `http_max_body_bytes`. Every route of `router` needs an API key."""
    serving: list[Serving] = field(default_factory=list)
    """What the component serves now (model, version, variant, source), listed in `/readyz`;
    None while nothing is loaded."""


class BackgroundLoops:
    """Loops that run while the app serves, started and cancelled with it."""

    def __init__(self, loops: list[Loop]):
        self.loops = loops
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start every loop as a task."""
        self.tasks = [asyncio.create_task(_awaited(loop)) for loop in self.loops]

    async def stop(self) -> None:
        """Cancel every loop and wait for it to end, at most `LOOP_STOP_SECONDS`."""
        for task in self.tasks:
            task.cancel()
        if self.tasks:
            # A loop that swallows its cancellation must not hold the shutdown forever.
            done, stuck = await asyncio.wait(self.tasks, timeout=LOOP_STOP_SECONDS)
            for task in done:
                if not task.cancelled():
                    task.result()  # a loop's own failure surfaces, as it always did
            for task in stuck:
                logging.getLogger(__name__).error(
                    "a background loop did not stop within %s s of its cancellation: %r",
                    LOOP_STOP_SECONDS,
                    task,
                )
        self.tasks = []


LOOP_STOP_SECONDS = 10.0
"""How long the app's stop waits for its cancelled background loops."""


async def _awaited(loop: Loop) -> None:
    await loop()


def create_app(runtime: Runtime, components: list[Component], *, title: str) -> FastAPI:
    """Build an app serving the components on top of a shared runtime."""
    loops = BackgroundLoops([loop for component in components for loop in component.loops])

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await runtime.start_storage()
        # Components load what their handlers need (models) before the first event arrives.
        for component in components:
            for hook in component.on_start:
                await hook()
        await runtime.start_messaging()
        await loops.start()
        # Everything imported and loaded so far lives as long as the process. Frozen, the
        # collector stops walking it on every full collection, which otherwise pauses every
        # in-flight request for 100 ms or more under load (bench/RESULTS.md).
        gc.collect()
        gc.freeze()
        log.info("%s started", title)
        try:
            yield
        finally:
            gc.unfreeze()
            await loops.stop()
            for component in reversed(components):
                for hook in component.on_stop:
                    await hook()
            await runtime.stop()
            log.info("%s stopped", title)

    app = FastAPI(title=title, version="0.1.0", lifespan=lifespan)
    app.state.runtime = runtime
    for component in components:
        if component.state is not None:
            setattr(app.state, component.name, component.state)
    install_error_answers(app)
    app.add_middleware(
        RequestGuard, keyring=runtime.keyring, rules=_guard_rules(app, runtime, components)
    )
    # Added last, so outermost: it times and counts the guard's refusals too.
    app.add_middleware(RequestMetrics, service=runtime.service)
    for component in components:
        if component.router is not None:
            app.include_router(component.router)

    hooks = [hook for component in components for hook in component.describe]
    _describe_with(app, [_document_body_answers, *hooks])
    _add_operations_routes(app, runtime, components)
    return app


def _add_operations_routes(app: FastAPI, runtime: Runtime, components: list[Component]) -> None:
    """Liveness, readiness (with what each component serves) and metrics."""
    checks: dict[str, Check] = {
        "database": runtime.database.healthy,
        "bus": runtime.bus.healthy,
        "object_store": runtime.store.healthy,
    }
    for component in components:
        checks.update(component.ready_checks)
    serving = [report for component in components for report in component.serving]

    @app.get("/healthz", tags=["operations"], summary="Liveness: the process is serving.")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Readiness: database, bus, object store and required models are available; "
        "`serving` lists the model, version and variant each model-serving part answers with.",
        responses={503: {"description": "At least one dependency is not ready."}},
    )
    async def readyz() -> JSONResponse:
        results = {name: await check() for name, check in checks.items()}
        ready = all(results.values())
        served = [report for report in (each() for each in serving) if report is not None]
        return JSONResponse(
            {"ready": ready, "checks": results, "serving": served},
            status_code=200 if ready else 503,
        )

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics.",
        response_class=PlainTextResponse,  # documents the text exposition format, not JSON
    )
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


S = TypeVar("S", bound=CommonSettings)


def build_service_app(
    service: str, settings: S, component: Callable[[Runtime, S], Component]
) -> FastAPI:
    """One service as its own process: its logging, its runtime, and an app serving it."""
    configure_logging(level=settings.log_level, json_lines=settings.log_json, service=service)
    if not settings.kafka_bootstrap_servers:
        log.warning(ALONE_ON_THE_IN_PROCESS_BUS, service)
    runtime = Runtime(settings, service=service)
    return create_app(runtime, [component(runtime, settings)], title=f"marketsense {service}")


ALONE_ON_THE_IN_PROCESS_BUS = (
    "%s runs on the in-process bus (MARKETSENSE_KAFKA_BOOTSTRAP_SERVERS is unset): its events "
    "reach only components in this process, not services started as other processes, so a run "
    "started across processes never ends; run every service in one process with "
    "`marketsense standalone`, or set MARKETSENSE_KAFKA_BOOTSTRAP_SERVERS for every service"
)
"""What a service served as its own process on the in-process bus warns at start-up."""


OPERATIONS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""Paths every app serves without a key: probes and scrapes."""


def _guard_rules(app: FastAPI, runtime: Runtime, components: list[Component]) -> GuardRules:
    """What the request guard checks: every path but the operations and API documents needs a
    key; bodies are bounded by the settings and the components' own limits."""
    documents = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    settings = runtime.settings
    return GuardRules(
        public_paths=OPERATIONS_PATHS | {path for path in documents if path},
        default_limit=BodyLimit(settings.http_max_body_kib << 10, "MARKETSENSE_HTTP_MAX_BODY_KIB"),
        limits={k: v for component in components for k, v in component.body_limits.items()},
        body_timeout=settings.http_body_timeout_seconds,
    )


BODY_ANSWERS = {
    "408": "The body did not arrive within `MARKETSENSE_HTTP_BODY_TIMEOUT_SECONDS`.",
    "413": "The body is over this route's limit; `detail` names it and its setting.",
}
"""What the request guard may answer to any route that takes a body."""


def _document_body_answers(document: dict[str, Any]) -> None:
    """Document the request guard's 408 and 413 on every operation that takes a body."""
    schemas = document.get("components", {}).get("schemas", {})
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorRead"}}}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                for status, description in BODY_ANSWERS.items():
                    answer: dict[str, Any] = {"description": description}
                    if "ErrorRead" in schemas:
                        answer["content"] = content
                    operation["responses"].setdefault(status, answer)


def _describe_with(app: FastAPI, hooks: list[Describe]) -> None:
    """Apply the components' edits to the app's OpenAPI document the first time it is built."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            for hook in hooks:
                hook(document)
            return document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


class RequestMetrics:
    """Pure ASGI middleware timing requests by route template and status."""

    def __init__(self, app: ASGIApp, *, service: str):
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            # Unmatched paths share one label so a scanner cannot blow up the series count.
            template = getattr(route, "path", "unmatched")
            HTTP_REQUEST_SECONDS.labels(
                self.service, method_label(scope["method"]), template, str(status)
            ).observe(time.perf_counter() - started)
