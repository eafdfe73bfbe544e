"""Prediction API latency and throughput with wrk, against a bare FastAPI route in the same run.

Starts the real prediction service (`python -m marketsense.prediction`) on a fresh PostgreSQL
database with a few stored predictions, a reader key and a small predictor, and a bare FastAPI app
(`bench/bare_app.py`) whose one route answers a constant JSON body of the same size, both under
the same uvicorn options. Then runs `wrk --latency` against `GET /v1/predictions/AAPL/latest` and
the bare route, alternating for a number of rounds, and `POST /v1/predict` with 500 rows. Prints
a table with the median of the rounds, the goals and whether they are met, then one JSON line.
Any non-2xx response or socket error is an error; a missed goal is not (it is a measurement).

    . infra/env.sh && uv run python bench/api_latency.py --rounds 3 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, Any

import asyncpg
import httpx
import numpy as np
from skl2onnx import to_onnx
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from marketsense.common.auth import KEY_HEADER, Role, create_key
from marketsense.common.db.engine import Database
from marketsense.common.db.migrate import upgrade
from marketsense.common.db.models import Prediction, Run, Task
from marketsense.common.features import FEATURE_COLUMNS, FEATURE_SCHEMA
from marketsense.common.states import RunState, Stage, TaskState
from marketsense.models.predictor import PredictorManifest, write_predictor

BENCH_DIR = Path(__file__).resolve().parent
BARE_APP = BENCH_DIR / "bare_app.py"
POST_SCRIPT = BENCH_DIR / "wrk" / "post_json.lua"

RATIO_GOAL = 0.8
"""The real route must serve at least this share of the bare route's requests/s."""
TAIL_GOAL = 3.0
"""The real route's p99 latency must be at most this multiple of its p50."""

SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOG")
"""Symbols with stored predictions; the latest route is measured on the first."""
DAYS = 3
"""Trading days of stored predictions, one run each."""
AS_OF = dt.date(2026, 11, 20)
"""The newest stored day."""
READY_TIMEOUT_S = 120.0
"""How long a server may take to come up before the bench gives up."""


class BenchError(Exception):
    """Something went wrong that makes the measurement invalid."""


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run measured."""

    requests_per_s: float
    """Requests completed per second."""
    p50_ms: float
    """Median latency."""
    p99_ms: float
    """99th percentile latency."""
    requests: int
    """Requests completed."""
    non_2xx: int
    """Responses with a status outside 2xx and 3xx."""
    socket_errors: int
    """Connect, read, write and timeout errors."""
    server_cpu_us: float | None = None
    """CPU time the server process spent per request (user + system), if measured."""


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def duration_ms(text: str) -> float:
    """A wrk duration such as `820.00us`, `9.43ms` or `1.02s`, in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if match is None:
        raise BenchError(f"unreadable wrk duration {text!r}")
    return float(match.group(1)) * _UNIT_MS[match.group(2)]


def parse_wrk(output: str) -> WrkResult:
    """Requests/s, the 50% and 99% latencies, and the error counts of `wrk --latency` output."""

    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise BenchError(f"wrk output lacks {pattern!r}:\n{output}")
        return match

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkResult(
        requests_per_s=float(find(r"^Requests/sec:\s+([\d.]+)").group(1)),
        p50_ms=duration_ms(find(r"^\s+50%\s+(\S+)\s*$").group(1)),
        p99_ms=duration_ms(find(r"^\s+99%\s+(\S+)\s*$").group(1)),
        requests=int(find(r"^\s+(\d+) requests in ").group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
    )


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far, from /proc (None where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the command name: state is field 3, utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def find_wrk() -> str:
    """The wrk executable, or exit with how to install it."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed: sudo apt-get install -y wrk")
    return wrk


def wrk_version(wrk: str) -> str:
    """The first line of `wrk -v`, trimmed to the version (wrk prints usage and exits 1)."""
    output = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False).stdout
    return output.splitlines()[0].split(" [")[0] if output else "unknown"


async def run_wrk(
    wrk: str,
    url: str,
    *,
    threads: int,
    connections: int,
    seconds: float,
    headers: dict[str, str],
    script: Path | None = None,
    script_args: Sequence[str] = (),
    request_timeout_s: float = 2.0,
    server_pid: int | None = None,
) -> WrkResult:
    """One wrk run; raise on a failed run, a non-2xx response or a socket error.

    With `server_pid`, also measure the server's CPU time per request: unlike requests/s, it
    hardly moves when other processes compete for the cores.
    """
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        f"--timeout={request_timeout_s:g}s",
        "--latency",
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if script is not None:
        command += ["-s", str(script)]
    command.append(url)
    if script_args:
        command += ["--", *script_args]
    cpu_before = cpu_seconds(server_pid) if server_pid else None
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    stdout, _ = await process.communicate()
    cpu_after = cpu_seconds(server_pid) if server_pid else None
    output = stdout.decode(errors="replace")
    if process.returncode != 0:
        raise BenchError(f"wrk exited with {process.returncode}:\n{output}")
    result = parse_wrk(output)
    if result.non_2xx or result.socket_errors:
        raise BenchError(
            f"{url}: {result.non_2xx} non-2xx responses and {result.socket_errors} socket errors "
            f"in {result.requests} requests:\n{output}"
        )
    if cpu_before is not None and cpu_after is not None and result.requests:
        result = replace(result, server_cpu_us=(cpu_after - cpu_before) / result.requests * 1e6)
    return result


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


def median_of(results: list[WrkResult]) -> dict[str, float]:
    """The median requests/s, p50, p99 and (where measured) server CPU per request over rounds."""
    medians = {
        "requests_per_s": statistics.median(r.requests_per_s for r in results),
        "p50_ms": statistics.median(r.p50_ms for r in results),
        "p99_ms": statistics.median(r.p99_ms for r in results),
    }
    cpu = [r.server_cpu_us for r in results if r.server_cpu_us is not None]
    if cpu:
        medians["server_cpu_us"] = statistics.median(cpu)
    return medians


def met(ok: bool) -> str:
    """How a goal reads in the table."""
    return "met" if ok else "MISSED"


def print_round(label: str, round_no: int, result: WrkResult) -> None:
    """One line per wrk run, as it finishes."""
    print(
        f"round {round_no}  {label:26} {result.requests_per_s:9,.0f} req/s   "
        f"p50 {result.p50_ms:7.2f} ms   p99 {result.p99_ms:7.2f} ms   "
        f"server CPU {result.server_cpu_us or float('nan'):6.0f} us/request   "
        f"({result.requests:,} requests)",
        flush=True,
    )


async def bench(args: argparse.Namespace, wrk: str, workdir: Path) -> dict[str, Any]:
    """Set up, measure, and return the figures."""
    predictor_dir = workdir / "predictor"
    manifest = await asyncio.to_thread(build_predictor, predictor_dir)
    body_file = workdir / "predict.json"
    body = predict_body(args.predict_rows)
    await asyncio.to_thread(body_file.write_bytes, body)

    async with fresh_database(args.dsn) as database_url:
        key = await seed_database(database_url, manifest)
        headers = {KEY_HEADER: key}
        real_port, bare_port = free_port(), free_port()
        real_env = service_env(
            database_url=database_url,
            home=str(workdir / "home"),
            predictor_path=str(predictor_dir),
            log_level="WARNING",
            host="127.0.0.1",
            port=str(real_port),
        )
        latest_path = f"/v1/predictions/{SYMBOLS[0]}/latest"
        async with (
            httpx.AsyncClient(timeout=30) as client,
            serving(
                "prediction service",
                [sys.executable, "-m", "marketsense.prediction"],
                port=real_port,
                env=real_env,
                log=workdir / "prediction.log",
            ) as real,
        ):
            await wait_until_ok(client, real, "/readyz", {})
            real_body = (await wait_until_ok(client, real, latest_path, headers)).content
            # The figures are for the authenticated route; a route that admits anyone is not it.
            anonymous = await client.get(real.url + latest_path)
            if anonymous.status_code != 401:
                raise BenchError(
                    f"GET {latest_path} without a key answered {anonymous.status_code}"
                )
            async with serving(
                "bare app",
                [
                    sys.executable,
                    str(BARE_APP),
                    f"--port={bare_port}",
                    f"--body-bytes={len(real_body)}",
                    f"--response={args.bare_response}",
                ],
                port=bare_port,
                env=service_env(),
                log=workdir / "bare.log",
            ) as bare:
                bare_body = (await wait_until_ok(client, bare, latest_path, headers)).content
                if len(bare_body) != len(real_body):
                    raise BenchError(
                        f"bare body has {len(bare_body)} bytes, the real one {len(real_body)}"
                    )
                predict_url = real.url + "/v1/predict"
                await check_predict(client, predict_url, body, headers, args.predict_rows)

                servers = {"real": real, "bare": bare}

                async def measure_get(side: str, seconds: float) -> WrkResult:
                    return await run_wrk(
                        wrk,
                        servers[side].url + latest_path,
                        threads=args.threads,
                        connections=args.connections,
                        seconds=seconds,
                        headers=headers,
                        server_pid=servers[side].process.pid,
                    )

                for side in servers:
                    await measure_get(side, args.warmup)
                results: dict[str, list[WrkResult]] = {"real": [], "bare": []}
                labels = {"real": "GET latest (service)", "bare": "bare FastAPI route"}
                for round_no in range(1, args.rounds + 1):
                    # Alternate which side goes first, so neither always runs on a warmer machine.
                    order = ("real", "bare") if round_no % 2 else ("bare", "real")
                    for side in order:
                        result = await measure_get(side, args.seconds)
                        results[side].append(result)
                        print_round(labels[side], round_no, result)

                predict_runs = []
                for round_no in range(1, args.rounds + 1):
                    result = await run_wrk(
                        wrk,
                        predict_url,
                        threads=args.threads,
                        connections=args.predict_connections,
                        seconds=args.seconds,
                        headers=headers,
                        script=POST_SCRIPT,
                        script_args=[str(body_file)],
                        request_timeout_s=30,
                        server_pid=real.process.pid,
                    )
                    predict_runs.append(result)
                    print_round(f"POST predict {args.predict_rows} rows", round_no, result)
    return {
        "real": median_of(results["real"]),
        "bare": median_of(results["bare"]),
        "predict": median_of(predict_runs),
        "body_bytes": len(real_body),
        "rounds": {
            side: [asdict(r) for r in runs]
            for side, runs in (*results.items(), ("predict", predict_runs))
        },
    }


def report(args: argparse.Namespace, figures: dict[str, Any], wrk: str) -> None:
    """Print the table and one JSON line."""
    real, bare, predict = figures["real"], figures["bare"], figures["predict"]
    ratio = real["requests_per_s"] / bare["requests_per_s"]
    tail = real["p99_ms"] / real["p50_ms"]
    rows_per_s = predict["requests_per_s"] * args.predict_rows
    print()
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.seconds:g}s --latency, "
        f"median of {args.rounds} rounds; body {figures['body_bytes']} bytes; "
        "bare route returns "
        + ("a dict" if args.bare_response == "dict" else "pre-serialised bytes")
    )
    print(
        f"{'target':34} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'p99/p50':>8} "
        f"{'server CPU us/req':>18}"
    )
    for label, side in (("GET latest (prediction service)", real), ("bare FastAPI route", bare)):
        print(
            f"{label:34} {side['requests_per_s']:9,.0f} {side['p50_ms']:8.2f} "
            f"{side['p99_ms']:8.2f} {side['p99_ms'] / side['p50_ms']:8.2f} "
            f"{side.get('server_cpu_us', float('nan')):18.0f}"
        )
    print(f"ratio service/bare {ratio:.2f}x   goal >= {RATIO_GOAL}x: {met(ratio >= RATIO_GOAL)}")
    print(f"service p99/p50   {tail:.2f}x   goal <= {TAIL_GOAL}x: {met(tail <= TAIL_GOAL)}")
    print(
        f"POST /v1/predict, {args.predict_rows} rows, -c{args.predict_connections}: "
        f"{predict['requests_per_s']:,.1f} req/s = {rows_per_s:,.0f} rows/s, "
        f"p50 {predict['p50_ms']:.1f} ms, p99 {predict['p99_ms']:.1f} ms, "
        f"server CPU {predict.get('server_cpu_us', float('nan')) / 1000:.1f} ms/request"
    )
    print(
        json.dumps(
            {
                "benchmark": "api_latency",
                "wrk": wrk_version(wrk),
                "threads": args.threads,
                "connections": args.connections,
                "seconds": args.seconds,
                "rounds": args.rounds,
                "bare_response": args.bare_response,
                "body_bytes": figures["body_bytes"],
                "latest": {k: round(v, 2) for k, v in real.items()},
                "bare": {k: round(v, 2) for k, v in bare.items()},
                "ratio": round(ratio, 3),
                "p99_over_p50": round(tail, 2),
                "predict": {
                    "rows": args.predict_rows,
                    "connections": args.predict_connections,
                    **{k: round(v, 2) for k, v in predict.items()},
                    "rows_per_s": round(rows_per_s),
                },
                "goals_met": {
                    f"at_least_{RATIO_GOAL}x_bare": ratio >= RATIO_GOAL,
                    f"p99_at_most_{TAIL_GOAL}x_p50": tail <= TAIL_GOAL,
                },
                "per_round": figures["rounds"],
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                f"Python {platform.python_version()}",
                "load_average": [round(x, 2) for x in os.getloadavg()],
            }
        )
    )


def main() -> None:
    """Parse options, check for wrk, run the bench; exit non-zero on any error."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating service/bare rounds")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured wrk run per target")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--predict-rows", type=int, default=500)
    parser.add_argument("--predict-connections", type=int, default=8)
    parser.add_argument(
        "--bare-response",
        choices=("dict", "bytes"),
        default="dict",
        help="the bare route returns a dict (FastAPI serialises it) or pre-serialised bytes",
    )
    parser.add_argument(
        "--dsn",
        default=os.environ.get("MARKETSENSE_TEST_PG_DSN"),
        help="PostgreSQL server, postgresql://user@host:port (default $MARKETSENSE_TEST_PG_DSN)",
    )
    args = parser.parse_args()
    wrk = find_wrk()
    if not args.dsn:
        raise SystemExit(
            'no PostgreSQL: run after `. infra/env.sh` (or `eval "$(infra/up.sh)"`) or pass --dsn'
        )
    with tempfile.TemporaryDirectory(prefix="api-latency-") as tmp:
        try:
            figures = asyncio.run(bench(args, wrk, Path(tmp)))
        except BenchError as exc:
            raise SystemExit(f"api_latency: {exc}") from None
    report(args, figures, wrk)


if __name__ == "__main__":
    main()
