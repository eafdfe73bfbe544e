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
import json
import os
import platform
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx

from api_latency_setup import (
    SYMBOLS,
    Server,
    build_predictor,
    check_predict,
    free_port,
    fresh_database,
    predict_body,
    seed_database,
    service_env,
    serving,
    wait_until_ok,
)
from api_latency_wrk import (
    BenchError,
    WrkResult,
    find_wrk,
    median_of,
    print_round,
    run_wrk,
    wrk_version,
)
from marketsense.common.auth import KEY_HEADER

BENCH_DIR = Path(__file__).resolve().parent
BARE_APP = BENCH_DIR / "bare_app.py"
POST_SCRIPT = BENCH_DIR / "wrk" / "post_json.lua"

RATIO_GOAL = 0.8
"""The real route must serve at least this share of the bare route's requests/s."""
TAIL_GOAL = 3.0
"""The real route's p99 latency must be at most this multiple of its p50."""
LATEST_PATH = f"/v1/predictions/{SYMBOLS[0]}/latest"
"""The route measured against the bare one."""


def met(ok: bool) -> str:
    """How a goal reads in the table."""
    return "met" if ok else "MISSED"


async def _real_body(client: httpx.AsyncClient, real: Server, headers: dict[str, str]) -> bytes:
    """Wait for the prediction service; the body of the latest route, which must need a key."""
    await wait_until_ok(client, real, "/readyz", {})
    real_body = (await wait_until_ok(client, real, LATEST_PATH, headers)).content
    # The figures are for the authenticated route; a route that admits anyone is not it.
    anonymous = await client.get(real.url + LATEST_PATH)
    if anonymous.status_code != 401:
        raise BenchError(f"GET {LATEST_PATH} without a key answered {anonymous.status_code}")
    return real_body


async def _measure_latest(
    args: argparse.Namespace, wrk: str, servers: dict[str, Server], headers: dict[str, str]
) -> dict[str, list[WrkResult]]:
    """A warm-up, then alternating rounds of `GET latest` on the service and the bare route."""

    async def measure_get(side: str, seconds: float) -> WrkResult:
        return await run_wrk(
            wrk,
            servers[side].url + LATEST_PATH,
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
    return results


async def _measure_predict(
    args: argparse.Namespace,
    wrk: str,
    real: Server,
    headers: dict[str, str],
    body_file: Path,
) -> list[WrkResult]:
    """Rounds of `POST /v1/predict` with the body in `body_file`."""
    predict_runs = []
    for round_no in range(1, args.rounds + 1):
        result = await run_wrk(
            wrk,
            real.url + "/v1/predict",
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
    return predict_runs


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
            real_body = await _real_body(client, real, headers)
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
                bare_body = (await wait_until_ok(client, bare, LATEST_PATH, headers)).content
                if len(bare_body) != len(real_body):
                    raise BenchError(
                        f"bare body has {len(bare_body)} bytes, the real one {len(real_body)}"
                    )
                predict_url = real.url + "/v1/predict"
                await check_predict(client, predict_url, body, headers, args.predict_rows)
                results = await _measure_latest(args, wrk, {"real": real, "bare": bare}, headers)
                predict_runs = await _measure_predict(args, wrk, real, headers, body_file)
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
