"""Every pipeline service as a real process on Kafka, PostgreSQL and S3, with faults to inject
and counters of what a run left behind (rows, events, recovery time)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import Table, func, select

from marketsense.common.db.engine import Database
from marketsense.common.db.models import FeatureSet, Prediction, RawObject, Task
from marketsense.common.events import Envelope
from tests.backends import as_environment, real_servers
from tests.e2e.processes import free_port

PIPELINE = ("orchestrator", "ingestion", "processing", "prediction")
"""The services a run flows through; a replica's name is `<service>-<n>`."""

LIVE_STATES = frozenset({"PENDING", "RUNNING"})
"""Run states before the run has ended."""

REPO = Path(__file__).resolve().parents[2]


def infra_script(script: str, command: str) -> None:
    """Run `infra/<script>.sh <command>` (e.g. `kafka kill`), failing the test if it fails."""
    subprocess.run(["bash", str(REPO / "infra" / f"{script}.sh"), command], check=True, timeout=180)


def service_environment(
    *,
    database_url: str,
    prefix: str,
    predictor_dir: Path,
    sentiment_model_dir: Path,
    home: Path,
) -> dict[str, str]:
    """The `MARKETSENSE_*` variables of every service: real servers, own topics and objects."""
    return as_environment(
        real_servers(database_url=database_url, prefix=prefix, bucket="marketsense-chaos")
        | {
            "predictor_path": predictor_dir,
            "sentiment_model_path": sentiment_model_dir,
            "home": home,
            "log_json": "false",
        }
    )


def module_of(name: str) -> str:
    """The service a process name runs: `processing-2` runs `marketsense.processing`."""
    return name.split("-", 1)[0]


def peak_rss_kib(pid: int) -> int | None:
    """A live process's peak resident memory (VmHWM) in KiB, or None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


@dataclass
class Deployment:
    """Service processes sharing one database, topic prefix and object-store prefix."""

    env: dict[str, str]
    logs_dir: Path
    database: Database
    api_key: str
    """A publisher key, sent with every orchestrator request."""
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    peak_rss: dict[str, int] = field(default_factory=dict)
    """Peak resident KiB of each process, sampled while it runs and when it is stopped."""

    def start(self, name: str, extra_env: Mapping[str, str] | None = None) -> None:
        """Start (or restart) one service process; its log appends to `<name>.log`."""
        self.ports.setdefault(name, free_port())
        with (self.logs_dir / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", f"marketsense.{module_of(name)}"],
                env={
                    **os.environ,
                    **self.env,
                    **(extra_env or {}),
                    "MARKETSENSE_PORT": str(self.ports[name]),
                },
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def url(self, name: str) -> str:
        """Base URL of a service process."""
        return f"http://127.0.0.1:{self.ports[name]}"

    def log_tail(self, name: str, chars: int = 3000) -> str:
        """The end of a process's log, for failure messages."""
        return (self.logs_dir / f"{name}.log").read_text(errors="replace")[-chars:]

    def sample_memory(self) -> None:
        """Record each live process's peak resident memory so far."""
        for name, process in self.processes.items():
            if process.poll() is None and (kib := peak_rss_kib(process.pid)) is not None:
                self.peak_rss[name] = max(self.peak_rss.get(name, 0), kib)

    def kill(self, name: str) -> None:
        """SIGKILL a process, as a crash or an OOM kill would, and reap it."""
        self.sample_memory()
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    def stop_all(self) -> None:
        """SIGTERM every process, then SIGKILL those still running after 30 s."""
        self.sample_memory()
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)

    async def wait_ready(
        self,
        client: httpx.AsyncClient,
        *names: str,
        timeout: float = 300,  # noqa: ASYNC109 - a deadline that fails the test, not a cancellation
    ) -> None:
        """Wait until each named (default: every) process answers /readyz with 200."""
        for name in names or tuple(self.processes):
            process = self.processes[name]
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    raise AssertionError(
                        f"{name} exited with {process.returncode}:\n{self.log_tail(name)}"
                    )
                try:
                    if (await client.get(f"{self.url(name)}/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"{name} not ready in {timeout} s:\n{self.log_tail(name)}")
                await asyncio.sleep(0.25)

    async def start_run(
        self, client: httpx.AsyncClient, *, as_of: dt.date, symbols: list[str]
    ) -> str:
        """Start a run through the orchestrator's API; return its id."""
        created = await client.post(
            f"{self.url('orchestrator')}/v1/runs",
            json={"as_of": as_of.isoformat(), "symbols": symbols},
            headers={"X-API-Key": self.api_key},
        )
        assert created.status_code == 201, created.text
        return str(created.json()["id"])

    async def run(self, client: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
        """The run as the orchestrator's API shows it."""
        response = await client.get(
            f"{self.url('orchestrator')}/v1/runs/{run_id}", headers={"X-API-Key": self.api_key}
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body


def stage_count(run: Mapping[str, Any], stage: str, state: str = "SUCCESS") -> int:
    """How many of a run's tasks of one stage are in one state."""
    for entry in run["stages"]:
        if entry["stage"] == stage:
            return int(entry["counts"].get(state, 0))
    return 0


async def wait_run(
    deployment: Deployment,
    client: httpx.AsyncClient,
    run_id: str,
    *,
    until: Any = None,
    timeout: float = 300,  # noqa: ASYNC109 - a deadline that fails the test, not a cancellation
) -> dict[str, Any]:
    """Poll the run until `until(run)` holds (default: it has ended); fail after `timeout`.

    The API may be briefly away during a fault (its database or bus restarting): those polls
    count as not yet.
    """
    done = until or (lambda run: run["state"] not in LIVE_STATES)
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while True:
        deployment.sample_memory()
        try:
            last = await deployment.run(client, run_id)
            if done(last):
                return last
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} not there in {timeout} s: {str(last)[:1500]}")
        await asyncio.sleep(0.25)


async def row_counts(database: Database, run_id: str) -> dict[str, dict[str, int]]:
    """Per table, the run's rows and its distinct keys (a duplicate row makes them differ)."""
    counts: dict[str, dict[str, int]] = {}
    async with database.engine.connect() as conn:
        for model, key in (
            (RawObject, (RawObject.symbol, RawObject.kind)),
            (FeatureSet, (FeatureSet.symbol,)),
            (Prediction, (Prediction.symbol, Prediction.horizon_days)),
        ):
            table = model.__table__
            assert isinstance(table, Table)
            rows = await conn.scalar(
                select(func.count()).select_from(table).where(table.c.run_id == run_id)
            )
            distinct = await conn.scalar(
                select(func.count()).select_from(
                    select(*key).where(table.c.run_id == run_id).distinct().subquery()
                )
            )
            counts[table.name] = {"rows": int(rows or 0), "distinct": int(distinct or 0)}
    return counts


async def task_counts(database: Database, run_id: str) -> dict[str, dict[str, int]]:
    """Tasks of a run by stage, then state."""
    counts: dict[str, dict[str, int]] = {}
    async with database.engine.connect() as conn:
        rows = await conn.execute(
            select(Task.stage, Task.state, func.count())
            .where(Task.run_id == run_id)
            .group_by(Task.stage, Task.state)
        )
        for stage, state, count in rows:
            counts.setdefault(stage, {})[state] = int(count)
    return counts


@dataclass
class TopicCount:
    """A run's events on one topic, read back from Kafka."""

    total: int
    """Events of the run on the topic."""
    ids: int
    """Distinct envelope ids."""
    symbols: int
    """Distinct symbols."""
    headers: list[dict[str, str]] = field(default_factory=list)
    """Each event's headers (dead letters carry the reason in `x-dlq-*`)."""
    keys: list[str] = field(default_factory=list)
    """Each event's symbol."""

    def lost(self, expected: int) -> int:
        """Symbols expected on the topic but never seen there."""
        return max(expected - self.symbols, 0)

    @property
    def duplicate_ids(self) -> int:
        """Events sent again with the same envelope id (an at-least-once resend)."""
        return self.total - self.ids

    @property
    def duplicate_symbols(self) -> int:
        """Events beyond one per symbol (work announced twice)."""
        return self.total - self.symbols


async def read_topic(bootstrap: str, topic: str, *, run_id: str) -> TopicCount:
    """Every event of a run on a topic, from the start to the current end of each partition."""
    # The admin client's metadata, not the consumer's: a consumer without subscriptions never
    # loads a topic's partitions into its own cluster view.
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [
        p["partition"] for d in described if d["error_code"] == 0 for p in d["partitions"]
    ]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        if not tps:
            return TopicCount(0, 0, 0)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        ids: Counter[str] = Counter()
        symbols: set[str] = set()
        headers: list[dict[str, str]] = []
        keys: list[str] = []
        remaining = {tp for tp in tps if ends[tp] > 0}
        deadline = time.monotonic() + 60
        while remaining and time.monotonic() < deadline:
            batch = await consumer.getmany(*remaining, timeout_ms=500)
            for tp, records in batch.items():
                for record in records:
                    envelope = Envelope.model_validate_json(record.value or b"{}")
                    if envelope.run_id == run_id:
                        ids[str(envelope.id)] += 1
                        symbols.add(envelope.symbol or "")
                        keys.append(envelope.symbol or "")
                        headers.append({k: v.decode() for k, v in record.headers})
                    if record.offset + 1 >= ends[tp]:
                        remaining.discard(tp)
        assert not remaining, f"could not read {topic} to its end"
        return TopicCount(sum(ids.values()), len(ids), len(symbols), headers, keys)
    finally:
        await consumer.stop()
