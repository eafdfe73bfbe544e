"""S3 object calls through marketsense's store (obstore) against boto3, side by side in one run.

Both sides write N objects of the size of a symbol's raw bars file and read each back, with 32
calls in flight, against the same S3 server. The boto3 side is the previous store: the calls run
in worker threads, as `asyncio.to_thread` does. Prints, per side, the client process's CPU time per
call (what the services pay) and calls per second (which includes the server's time).

    . infra/env.sh && uv run python bench/s3_client.py --objects 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import boto3
import obstore
import pyarrow
from botocore.config import Config

from marketsense.common.store.s3 import S3Store

BUCKET = "marketsense-bench"
IN_FLIGHT = 32


def cpu_seconds() -> float:
    """User plus system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def bounded(count: int, call: Callable[[int], Awaitable[None]]) -> None:
    """Run call(0..count-1) with at most IN_FLIGHT at once."""
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(i: int) -> None:
        async with gate:
            await call(i)

    await asyncio.gather(*(one(i) for i in range(count)))


def boto3_side(endpoint: str, data: bytes) -> Callable[[int], Awaitable[None]]:
    """One put and one get through boto3 in worker threads (the store before obstore)."""
    client: Any = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",  # noqa: S106 - the test server takes any key
        region_name="us-east-1",
        config=Config(max_pool_connections=IN_FLIGHT, s3={"addressing_style": "path"}),
    )
    prefix = uuid.uuid4().hex

    async def call(i: int) -> None:
        key = f"{prefix}/boto3/{i}.parquet"
        await asyncio.to_thread(client.put_object, Bucket=BUCKET, Key=key, Body=data)
        response = await asyncio.to_thread(client.get_object, Bucket=BUCKET, Key=key)
        body = await asyncio.to_thread(response["Body"].read)
        assert body == data

    return call


def store_side(store: S3Store, data: bytes) -> Callable[[int], Awaitable[None]]:
    """One put and one verified get through marketsense's S3Store (obstore)."""
    prefix = uuid.uuid4().hex

    async def call(i: int) -> None:
        ref = await store.put(f"{prefix}/obstore/{i}.parquet", data)
        assert await store.get(ref) == data

    return call


async def main(args: argparse.Namespace) -> dict[str, Any]:
    """Alternate the two sides for the rounds and keep each side's best round."""
    endpoint = args.endpoint or os.environ["MARKETSENSE_TEST_S3_ENDPOINT"]
    store = S3Store(
        f"s3://{BUCKET}",
        endpoint_url=endpoint,
        access_key_id="bench",
        secret_access_key="bench",  # noqa: S106 - the test server takes any key
    )
    await store.start()
    data = os.urandom(args.size)
    sides = {"boto3": boto3_side(endpoint, data), "obstore": store_side(store, data)}
    best: dict[str, dict[str, float]] = {}
    for _ in range(args.rounds):
        for name, call in sides.items():
            cpu, start = cpu_seconds(), time.perf_counter()
            await bounded(args.objects, call)
            wall, used = time.perf_counter() - start, cpu_seconds() - cpu
            calls = 2 * args.objects
            result = {"cpu_ms_per_call": 1000 * used / calls, "calls_per_s": calls / wall}
            if name not in best or result["cpu_ms_per_call"] < best[name]["cpu_ms_per_call"]:
                best[name] = result
    await store.close()
    return {
        "benchmark": "s3_client",
        "objects": args.objects,
        "object_bytes": args.size,
        "in_flight": IN_FLIGHT,
        "rounds": args.rounds,
        "endpoint": endpoint,
        "best": {k: {m: round(v, 3) for m, v in r.items()} for k, r in best.items()},
        "cpu_ratio_boto3_vs_obstore": round(
            best["boto3"]["cpu_ms_per_call"] / best["obstore"]["cpu_ms_per_call"], 2
        ),
        "versions": {
            "boto3": boto3.__version__,
            "obstore": obstore.__version__,
            "pyarrow": pyarrow.__version__,
        },
        "python": platform.python_version(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--size", type=int, default=12_000, help="bytes per object")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--endpoint", help="S3 endpoint; default $MARKETSENSE_TEST_S3_ENDPOINT")
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
