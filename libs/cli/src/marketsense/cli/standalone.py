"""`marketsense standalone`: every service in one process on the embedded default, each service's
API on its own port, until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from rich.console import Console
from rich.markup import escape
from sqlalchemy import select

from marketsense.cli.defaults import last_session
from marketsense.cli.embedded import PipelineSettings, pipeline_components, prepare_models
from marketsense.common.app import create_app
from marketsense.common.auth import Role, create_key, hash_key
from marketsense.common.db.models import ApiKey
from marketsense.common.logs import configure_logging
from marketsense.common.registry_calls import InProcessTransport
from marketsense.common.runtime import Runtime
from marketsense.common.serve import DEFAULT_PORTS, SERVICES, server_options

ADMIN_KEY_NAME = "standalone-admin"
"""The approver key `standalone` makes the first time it starts on a home."""

ADMIN_KEY_FILE = "standalone-admin-key.txt"
"""File under the home holding the admin key, readable by its owner only."""


class StandaloneRefused(Exception):
    """A port flag that cannot be served; the message says which and how to fix it."""


def standalone_ports(offset: int, overrides: list[str]) -> dict[str, int]:
    """Each service's port: its usual one plus `offset`, unless a `SERVICE=PORT` override says
    otherwise."""
    ports = {service: DEFAULT_PORTS[service] + offset for service in SERVICES}
    for override in overrides:
        service, _, port = override.partition("=")
        if service not in ports:
            raise StandaloneRefused(
                f"--port {override!r}: give SERVICE=PORT, SERVICE one of {', '.join(SERVICES)}"
            )
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise StandaloneRefused(f"--port {override!r}: the port must be 1-65535")
        ports[service] = int(port)
    taken = [p for p in ports.values() if not 0 < p < 65536]
    if taken:
        raise StandaloneRefused(f"--port-offset {offset} moves ports out of 1-65535: {taken}")
    if len(set(ports.values())) < len(ports):
        raise StandaloneRefused(f"two services on one port: {ports}; give each its own --port")
    return ports


@contextlib.contextmanager
def bound_sockets(host: str, ports: Mapping[str, int]) -> Iterator[dict[str, socket.socket]]:
    """A listening socket per service, bound before anything slow starts, closed on exit."""
    sockets: dict[str, socket.socket] = {}
    try:
        for service, port in ports.items():
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sockets[service] = sock
            try:
                sock.bind((host, port))
            except OSError as exc:
                raise StandaloneRefused(
                    f"cannot listen on {host}:{port} for {service}: {exc.strerror}; choose "
                    f"another with --port {service}=PORT or move every port with --port-offset N"
                ) from exc
            sock.listen(2048)
            sock.setblocking(False)
        yield sockets
    finally:
        for sock in sockets.values():
            sock.close()


def standalone_apps(settings: PipelineSettings) -> tuple[FastAPI, dict[str, FastAPI]]:
    """The whole pipeline as one app, whose start and stop run every component's, and an app
    per service serving that service's routes on the same runtime (started by the first)."""
    runtime = Runtime(settings, service="standalone", relay_all=True)
    transport = InProcessTransport()
    components = pipeline_components(runtime, settings, transport)
    pipeline = create_app(runtime, list(components.values()), title="marketsense standalone")
    transport.app = pipeline
    apps = {
        service: create_app(runtime, [components[service]], title=f"marketsense {service}")
        for service in SERVICES
    }
    return pipeline, apps


async def admin_key_note(runtime: Runtime, home: Path) -> str:
    """Make the admin key the first time and say it once; later, say where it is kept."""
    path = home / ADMIN_KEY_FILE
    async with runtime.transaction() as session:
        stored = await session.scalar(select(ApiKey).where(ApiKey.name == ADMIN_KEY_NAME))
        if stored is None:
            key = await create_key(session, name=ADMIN_KEY_NAME, role=Role.APPROVER)
            path.touch(mode=0o600)
            path.write_text(key + "\n")
            return (
                f"admin key (approver), shown this once and kept in {path}:\n  {key}\n"
                f"  export MARKETSENSE_API_KEY=$(cat {path})"
            )
    saved = path.read_text().strip() if path.is_file() else ""
    if stored.revoked_at is None and hash_key(saved) == stored.key_hash:
        return f"admin key: export MARKETSENSE_API_KEY=$(cat {path})"
    return (
        f"the admin key {ADMIN_KEY_NAME} is no longer in {path} or was revoked; make another "
        f"with MARKETSENSE_HOME={home} marketsense keys create NAME --role approver"
    )


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to the standalone process, which stops every
    server at once (each would otherwise take the process's handlers for itself)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_until_stopped(
    apps: Mapping[str, FastAPI], sockets: Mapping[str, socket.socket], settings: PipelineSettings
) -> None:
    """Serve each app on its socket until SIGINT or SIGTERM; a second signal stops at once."""
    options = server_options(settings)
    servers = {
        name: _Server(uvicorn.Config(app, lifespan="off", **options)) for name, app in apps.items()
    }
    signalled = asyncio.Event()

    def stop(*, force: bool = False) -> None:
        for server in servers.values():
            server.should_exit = True
            server.force_exit = server.force_exit or force

    def on_signal() -> None:
        # The first signal lets in-flight requests finish; a second drops them.
        stop(force=signalled.is_set())
        signalled.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    try:
        tasks = [
            asyncio.create_task(server.serve(sockets=[sockets[name]]))
            for name, server in servers.items()
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        stop()  # one server ending (it could not start, say) ends them all
        await asyncio.gather(*tasks)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def run_standalone(
    *, home: Path, host: str, ports: Mapping[str, int], console: Console
) -> int:
    """Build missing models, then serve every service until stopped; the exit code."""
    settings = PipelineSettings(home=home)
    # Building models logs every step of their export; the console says what matters.
    configure_logging(level="WARNING", json_lines=False)
    with bound_sockets(host, ports) as sockets:
        await prepare_models(settings, as_of=last_session(), console=console)
        configure_logging(level=settings.log_level, json_lines=False, service="standalone")
        # Seven servers would each say they started and stopped; the console lists them once.
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
        pipeline, apps = standalone_apps(settings)
        async with pipeline.router.lifespan_context(pipeline):
            note = await admin_key_note(pipeline.state.runtime, home)
            console.print(escape(note), soft_wrap=True)
            _print_listening(console, host, ports, settings)
            await serve_until_stopped(apps, sockets, settings)
    console.print("stopped")
    return 0


def _print_listening(
    console: Console, host: str, ports: Mapping[str, int], settings: PipelineSettings
) -> None:
    for service, port in ports.items():
        console.print(f"{service:>12}  http://{host}:{port}", soft_wrap=True, highlight=False)
    if settings.schedule_cron:
        console.print(
            f"schedule: runs at {settings.schedule_cron} (UTC) over "
            + ",".join(settings.universe()),
            soft_wrap=True,
        )
    else:
        console.print(
            "schedule: none (set MARKETSENSE_SCHEDULE_CRON and MARKETSENSE_SCHEDULE_UNIVERSE)"
        )
    console.print(
        f"data, objects and models under {settings.home.resolve()}; Ctrl-C stops every service",
        soft_wrap=True,
    )
