"""Start services as real processes for end-to-end tests, and stop them with SIGTERM."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import eventually, infra

SERVICE_PORTS = range(20_000, 32_000)
"""Where processes under test listen: below Linux's ephemeral range (32768-60999 by default), so
no outgoing connection takes a port between its choice here and the service binding it."""

_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port nobody listens on now and that this session has not handed out before.

    A port is only probed, then closed, before a process binds it: handing the same one out twice
    would let a second service fail to bind while the first answers its readiness checks.
    """
    for port in random.sample(SERVICE_PORTS, len(SERVICE_PORTS)):
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free loopback port in {SERVICE_PORTS}")


@dataclass
class Services:
    """Running service processes, their ports and log files."""

    processes: dict[str, subprocess.Popen[bytes]]
    ports: dict[str, int]
    logs: dict[str, Path]

    def url(self, name: str) -> str:
        """Base URL of a service."""
        return f"http://127.0.0.1:{self.ports[name]}"

    async def wait_ready(self, client: httpx.AsyncClient, *names: str) -> None:
        """Wait until each service's /readyz answers 200; fail if one exits first."""
        for name in names or tuple(self.processes):
            process = self.processes[name]

            async def ready(name: str = name, process: subprocess.Popen[bytes] = process) -> bool:
                if process.poll() is not None:
                    tail = self.logs[name].read_text()[-3000:]
                    pytest.fail(f"{name} exited with {process.returncode}:\n{tail}")
                try:
                    return (await client.get(f"{self.url(name)}/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready, timeout=90, interval=0.25)


@contextlib.contextmanager
def running_services(
    names: tuple[str, ...], env: Mapping[str, str], logs_dir: Path
) -> Iterator[Services]:
    """Run `python -m marketsense.<name>` for each name; SIGTERM (then kill) them on exit."""
    ports = {name: free_port() for name in names}
    logs = {name: logs_dir / f"{name}.log" for name in names}
    handles = {name: logs[name].open("wb") for name in names}
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-m", f"marketsense.{name}"],
            env={**os.environ, **env, "MARKETSENSE_PORT": str(ports[name])},
            stdout=handles[name],
            stderr=subprocess.STDOUT,
        )
        for name in names
    }
    try:
        yield Services(processes, ports, logs)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        for handle in handles.values():
            handle.close()


@contextlib.contextmanager
def scraped_by_prometheus(ports: Mapping[str, int], label: str) -> Iterator[str]:
    """Have the test Prometheus scrape these services (label `test`); yield its query URL."""
    targets = Path(infra("MARKETSENSE_TEST_PROMETHEUS_TARGETS"))
    name = label.strip(".")
    target_file = targets / f"{name}.json"
    staging = targets / f".{name}.tmp"
    staging.write_text(
        json.dumps(
            [
                {"targets": [f"127.0.0.1:{port}"], "labels": {"service": service, "test": label}}
                for service, port in ports.items()
            ]
        )
    )
    staging.rename(target_file)  # Prometheus may read a half-written file; a rename is atomic
    try:
        yield f"{infra('MARKETSENSE_TEST_PROMETHEUS')}/api/v1/query"
    finally:
        target_file.unlink(missing_ok=True)
