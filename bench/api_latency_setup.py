"""What bench/api_latency.py measures against: a small predictor, a seeded PostgreSQL database
and server processes it starts, waits for and stops."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import asyncpg
import httpx
import numpy as np
from skl2onnx import to_onnx
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from api_latency_wrk import BenchError
from marketsense.common.auth import Role, create_key
from marketsense.common.db.engine import Database
from marketsense.common.db.migrate import upgrade
from marketsense.common.db.models import Prediction, Run, Task
from marketsense.common.features import FEATURE_COLUMNS, FEATURE_SCHEMA
from marketsense.common.states import RunState, Stage, TaskState
from marketsense.models.predictor import PredictorManifest, write_predictor

SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOG")
"""Symbols with stored predictions; the latest route is measured on the first."""
DAYS = 3
"""Trading days of stored predictions, one run each."""
AS_OF = dt.date(2026, 11, 20)
"""The newest stored day."""
READY_TIMEOUT_S = 120.0
"""How long a server may take to come up before the bench gives up."""


def build_predictor(directory: Path, *, seed: int = 7) -> PredictorManifest:
    """A small predictor over the feature schema: imputer, scaler and logistic regression, as the
    baseline predictor is built, trained on random data and exported to ONNX."""
    rng = np.random.default_rng(seed)
    columns = list(FEATURE_COLUMNS)
    x = rng.normal(size=(2000, len(columns))).astype(np.float32)
    y = (x[:, 0] + rng.normal(size=len(x)) > 0).astype(int)
    model = make_pipeline(
        SimpleImputer(strategy="constant", fill_value=0.0, keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(max_iter=1000),
    )
    model.fit(x, y)
    onnx_model = to_onnx(model, x[:1], options={"zipmap": False}, target_opset=17)
    manifest = PredictorManifest(
        name="baseline-predictor",
        version="1",
        feature_schema=FEATURE_SCHEMA,
        features=columns,
        input_name=onnx_model.graph.input[0].name,
        probability_output="probabilities",
        metrics={"holdout_auc": 0.5},
        evaluation_window="bench: random data",
        training={"source": "bench"},
    )
    write_predictor(directory, onnx_bytes=onnx_model.SerializeToString(), manifest=manifest)
    return manifest


def predict_body(rows: int, *, seed: int = 11) -> bytes:
    """A `POST /v1/predict` body of `rows` rows with every feature of the schema."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(rows, len(FEATURE_COLUMNS)))
    return json.dumps(
        {
            "rows": [
                {
                    "symbol": f"S{i:04d}",
                    "as_of": AS_OF.isoformat(),
                    "features": dict(zip(FEATURE_COLUMNS, map(float, row), strict=True)),
                }
                for i, row in enumerate(values)
            ]
        }
    ).encode()


def signal_of(prob_up: float) -> str:
    """The service's signal for a probability at its default threshold (0.05)."""
    return "up" if prob_up >= 0.55 else "down" if prob_up <= 0.45 else "flat"


async def on_server(dsn: str, statement: str) -> None:
    """Run one statement in the PostgreSQL server's `postgres` database."""
    try:
        admin = await asyncpg.connect(f"{dsn}/postgres")
    except (OSError, asyncpg.PostgresError) as exc:
        raise BenchError(f"cannot reach PostgreSQL at {dsn}: {exc}") from exc
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def fresh_database(dsn: str) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database (its SQLAlchemy URL), dropped on exit."""
    name = f"marketsense_bench_{uuid.uuid4().hex[:8]}"
    drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    await on_server(dsn, f'CREATE DATABASE "{name}"')
    try:
        yield f"{dsn.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
    except BaseException:
        # The first error is the one to report; a failed drop only gets a line of its own.
        try:
            await on_server(dsn, drop)
        except (BenchError, asyncpg.PostgresError) as exc:
            print(f"api_latency: database {name} is left behind: {exc}", file=sys.stderr)
        raise
    await on_server(dsn, drop)


async def seed_database(url: str, manifest: PredictorManifest) -> str:
    """Migrate; store one run per day with a predict task and a prediction per symbol, by the
    bench's predictor; return a new reader key."""
    database = Database(url)
    rng = np.random.default_rng(3)
    try:
        await upgrade(database)
        async with database.session() as session:
            runs = [
                Run(
                    id=str(uuid.uuid4()),
                    as_of=AS_OF - dt.timedelta(days=DAYS - 1 - day),
                    state=RunState.SUCCESS,
                    symbols=len(SYMBOLS),
                )
                for day in range(DAYS)
            ]
            session.add_all(runs)
            await session.flush()  # tasks and predictions refer to their run
            for run in runs:
                for symbol in SYMBOLS:
                    prob_up = float(rng.uniform(0.3, 0.7))
                    session.add(
                        Task(
                            run_id=run.id,
                            symbol=symbol,
                            stage=Stage.PREDICT,
                            state=TaskState.SUCCESS,
                            attempts=1,
                        )
                    )
                    session.add(
                        Prediction(
                            run_id=run.id,
                            symbol=symbol,
                            as_of=run.as_of,
                            horizon_days=manifest.horizon_days,
                            prob_up=prob_up,
                            signal=signal_of(prob_up),
                            model_name=manifest.name,
                            model_version=manifest.version,
                        )
                    )
            key = await create_key(session, name="bench-reader", role=Role.READER)
            await session.commit()
    finally:
        await database.dispose()
    return key


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A server process, its base URL and its log file."""

    name: str
    process: asyncio.subprocess.Process
    url: str
    log: Path

    def tail(self) -> str:
        """The end of the server's log."""
        return self.log.read_text(errors="replace")[-3000:]


def service_env(**settings: str) -> dict[str, str]:
    """This process's environment without any MARKETSENSE_* variable, plus `settings`.

    Dropping inherited settings keeps a stray Kafka or object store address out of the bench.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETSENSE_")}
    env.update({f"MARKETSENSE_{name.upper()}": value for name, value in settings.items()})
    return env


def open_log(path: Path) -> IO[bytes]:
    """A server log file, open for writing."""
    return path.open("wb")


@contextlib.asynccontextmanager
async def serving(
    name: str, command: list[str], *, port: int, env: dict[str, str], log: Path
) -> AsyncIterator[Server]:
    """Run a server process; SIGTERM it on exit (and kill it if it lingers)."""
    handle = open_log(log)
    try:
        process = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=handle, stderr=asyncio.subprocess.STDOUT
        )
        try:
            yield Server(name, process, f"http://127.0.0.1:{port}", log)
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), timeout=30)
                except TimeoutError:
                    process.kill()
                    await process.wait()
    finally:
        handle.close()


async def wait_until_ok(
    client: httpx.AsyncClient, server: Server, path: str, headers: dict[str, str]
) -> httpx.Response:
    """Poll `path` until it answers 200; raise if the server exits or the deadline passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT_S
    last = "no answer"
    while loop.time() < deadline:
        if server.process.returncode is not None:
            raise BenchError(
                f"{server.name} exited with {server.process.returncode}:\n{server.tail()}"
            )
        try:
            response = await client.get(server.url + path, headers=headers)
        except httpx.TransportError as exc:
            last = repr(exc)
        else:
            if response.status_code == 200:
                return response
            last = f"{response.status_code} {response.text[:300]}"
        await asyncio.sleep(0.2)
    raise BenchError(
        f"{server.name} {path} not ready in {READY_TIMEOUT_S:g} s ({last}):\n{server.tail()}"
    )


async def check_predict(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], rows: int
) -> None:
    """One `POST /v1/predict` must answer 200 with a prediction per row before wrk runs it."""
    response = await client.post(
        url, content=body, headers={**headers, "Content-Type": "application/json"}
    )
    if response.status_code != 200:
        raise BenchError(f"POST {url} answered {response.status_code}: {response.text[:500]}")
    predictions = response.json().get("predictions", [])
    if len(predictions) != rows:
        raise BenchError(f"POST {url} returned {len(predictions)} predictions for {rows} rows")
