"""End-to-end runs of 100, 1,000 and 5,000 symbols on real Kafka, PostgreSQL and S3.

Every service runs as its own process (the same deployment code as the fault tests). For each
size: wall time from `POST /v1/runs` to the run's end, symbols/s, and the peak resident memory
(VmHWM) and CPU seconds of each service process and of each server (Kafka, PostgreSQL, S3), and
the time each service's handlers spent per event; then how time per symbol grows from the smallest
size to the largest (1.0 is linear). Needs the servers of `infra/up.sh` and their variables:

    . infra/env.sh && PYTHONPATH=. uv run python bench/pipeline_scaling.py --sizes 100 1000 5000
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from tests.chaos.deployment import (
    PIPELINE,
    Deployment,
    service_environment,
    wait_run,
)
from tests.conftest import TEST_AS_OF, build_predictor, build_sentiment_model, migrated_pg_database
from tests.model_registry_rows import new_api_key

from marketsense.common.auth import Role
from marketsense.common.db.engine import Database
from monitoring_cost import monitoring_cost
from process_cpu import server_pids, tree_cpu_seconds


def build_models(workdir: Path) -> tuple[Path, Path]:
    """The default sentiment model and a baseline predictor, as the test fixtures build them."""
    sentiment = build_sentiment_model(workdir / "sentiment")
    return sentiment, build_predictor(workdir / "predictor", sentiment)


async def handler_ms(client: httpx.AsyncClient, url: str) -> dict[str, float]:
    """Mean milliseconds a service's handlers spent per event, by topic, from its /metrics."""
    text = (await client.get(f"{url}/metrics")).text
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "marketsense_event_handler_duration_seconds":
            continue
        for sample in family.samples:
            topic = sample.labels.get("topic", "").rsplit(".", 2)[-2:]
            key = ".".join(topic)
            if sample.name.endswith("_sum"):
                sums[key] = sums.get(key, 0.0) + sample.value
            elif sample.name.endswith("_count"):
                counts[key] = counts.get(key, 0.0) + sample.value
    return {key: round(1000 * sums[key] / counts[key], 1) for key in sums if counts.get(key)}


async def one_size(
    size: int, *, database_url: str, database: Database, models: tuple[Path, Path], workdir: Path
) -> dict[str, Any]:
    """Deploy fresh processes on fresh topics, run `size` symbols, and measure."""
    sentiment, predictor = models
    logs = workdir / f"logs-{size}"
    logs.mkdir()
    env = service_environment(
        database_url=database_url,
        prefix=f"bench{uuid.uuid4().hex[:8]}.",
        predictor_dir=predictor,
        sentiment_model_dir=sentiment,
        home=workdir / "home",
    ) | {"MARKETSENSE_LOG_LEVEL": "WARNING"}
    key = await new_api_key(database, role=Role.PUBLISHER)
    deployment = Deployment(env=env, logs_dir=logs, database=database, api_key=key)
    for name in PIPELINE:
        deployment.start(name)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            await deployment.wait_ready(client)
            # Each size gets its own day: one live run per day is allowed.
            as_of = TEST_AS_OF - dt.timedelta(days=7 * (1 + len(str(size))))
            symbols = [f"B{i:05d}" for i in range(size)]
            pids = {name: process.pid for name, process in deployment.processes.items()}
            pids |= server_pids(Path(os.environ["INFRA_STATE_DIR"]))
            cpu_before = {name: tree_cpu_seconds(pid) for name, pid in pids.items()}
            started = time.perf_counter()
            run_id = await deployment.start_run(client, as_of=as_of, symbols=symbols)
            run = await wait_run(deployment, client, run_id, timeout=3600)
            wall = time.perf_counter() - started
            cpu = {
                name: round(tree_cpu_seconds(pid) - cpu_before[name], 1)
                for name, pid in pids.items()
            }
            handlers = {name: await handler_ms(client, deployment.url(name)) for name in PIPELINE}
        deployment.sample_memory()
    finally:
        deployment.stop_all()
    return {
        "symbols": size,
        "state": run["state"],
        "wall_seconds": round(wall, 2),
        "symbols_per_second": round(size / wall, 1),
        "peak_rss_mib": {name: round(kib / 1024) for name, kib in deployment.peak_rss.items()},
        "cpu_seconds": cpu,
        "handler_ms_per_event": handlers,
    }


async def bench(sizes: list[int]) -> dict[str, Any]:
    """Every size, one after the other, on one fresh database."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        models = await asyncio.to_thread(build_models, workdir)
        async with migrated_pg_database(
            os.environ["MARKETSENSE_TEST_PG_DSN"], prefix="marketsense_bench"
        ) as url:
            database = Database(url)
            try:
                results = [
                    await one_size(
                        size, database_url=url, database=database, models=models, workdir=workdir
                    )
                    for size in sizes
                ]
            finally:
                await database.dispose()
    small, large = results[0], results[-1]
    growth = (large["wall_seconds"] / large["symbols"]) / (small["wall_seconds"] / small["symbols"])
    return {
        "benchmark": "pipeline_scaling",
        "runs": results,
        "time_per_symbol_growth": round(growth, 2),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 1),
        "python": platform.python_version(),
    }


async def bench_monitoring(sizes: list[int]) -> dict[str, Any]:
    """What monitoring adds to a daily run, for every size, on one fresh database."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        models = await asyncio.to_thread(build_models, workdir)
        async with migrated_pg_database(
            os.environ["MARKETSENSE_TEST_PG_DSN"], prefix="marketsense_bench"
        ) as url:
            database = Database(url)
            servers = server_pids(Path(os.environ["INFRA_STATE_DIR"]))
            try:
                results = [
                    await monitoring_cost(
                        size,
                        database_url=url,
                        database=database,
                        models=models,
                        workdir=workdir,
                        server_pids=servers,
                    )
                    for size in sizes
                ]
            finally:
                await database.dispose()
    return {
        "benchmark": "monitoring_cost",
        "runs": results,
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 1),
        "python": platform.python_version(),
    }


def print_monitoring(figures: dict[str, Any]) -> None:
    """A table of monitoring's share of each run's CPU, and the figures as one JSON line."""
    print(
        f"{'symbols':>8} {'state':>8} {'wall s':>8} {'run CPU s':>10} "
        f"{'monitoring CPU s':>17} share"
    )
    for run in figures["runs"]:
        print(
            f"{run['symbols']:>8} {run['state']:>8} {run['wall_seconds']:>8} "
            f"{run['run_cpu_seconds']:>10} {run['cpu_seconds']['monitoring']:>17} "
            f"{run['monitoring_share']:.1%}"
        )
    print(json.dumps(figures))


def main() -> None:
    """Parse arguments, run, print a table and one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument(
        "--monitoring",
        action="store_true",
        help="measure what monitoring adds to a daily run instead (bench/monitoring_cost.py)",
    )
    args = parser.parse_args()
    if args.monitoring:
        print_monitoring(asyncio.run(bench_monitoring(sorted(args.sizes))))
        return
    figures = asyncio.run(bench(sorted(args.sizes)))
    print(f"{'symbols':>8} {'state':>8} {'wall s':>8} {'symbols/s':>10}  peak RSS MiB")
    for run in figures["runs"]:
        rss = ", ".join(f"{k} {v}" for k, v in sorted(run["peak_rss_mib"].items()))
        print(
            f"{run['symbols']:>8} {run['state']:>8} {run['wall_seconds']:>8} "
            f"{run['symbols_per_second']:>10}  {rss}"
        )
    for run in figures["runs"]:
        cpu = ", ".join(f"{k} {v}" for k, v in sorted(run["cpu_seconds"].items()))
        print(f"{run['symbols']:>8} CPU seconds: {cpu}")
        for service, topics in run["handler_ms_per_event"].items():
            per_topic = ", ".join(f"{k} {v} ms" for k, v in sorted(topics.items()))
            print(f"{run['symbols']:>8} {service} handlers per event: {per_topic}")
    print(f"time per symbol, largest vs smallest run: {figures['time_per_symbol_growth']}x")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
