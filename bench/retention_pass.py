"""A retention pass on PostgreSQL and S3 with batch deletes against one object per batch, side by
side in one run.

Each round stores the same history afresh (runs past every limit of the default policy, each with
its raw and feature objects and rows) in a fresh database and S3 prefix, then runs one real pass:
one side with `retention_batch_size` 1000 (one S3 DeleteObjects call and one transaction per
1000 objects), the other with 1 (one call and one transaction per object, as a cleanup without
batch deletes does). The sides alternate; the best round of each counts.

    . infra/env.sh && PYTHONPATH=. uv run python bench/retention_pass.py --runs 250 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
import uuid

from tests.backends import s3_store
from tests.conftest import migrated_pg_database
from tests.retention_support import store_expired_runs

from marketsense.common.clock import utc_now
from marketsense.common.db.engine import Database
from marketsense.common.retention.config import RetentionSettings
from marketsense.common.retention.passes import run_pass


async def one_pass(dsn: str, *, runs: int, batch: int) -> dict[str, float]:
    """Store `runs` expired runs, then time one real pass at `batch` objects per batch."""
    async with migrated_pg_database(dsn, prefix="marketsense_bench") as url:
        database = Database(url)
        store = s3_store(f"s3://marketsense-test/bench-retention-{uuid.uuid4().hex[:10]}")
        await store.start()
        try:
            now = utc_now()
            keys = await store_expired_runs(database, store, now=now, count=runs)
            settings = RetentionSettings(retention_batch_size=batch)
            started = time.perf_counter()
            result = await run_pass(database, store, settings, dry_run=False, now=now)
            seconds = time.perf_counter() - started
        finally:
            await store.close()
            await database.dispose()
    deleted = sum(result.tally.objects.values())
    if deleted != len(keys):
        raise SystemExit(f"the pass deleted {deleted} objects of {len(keys)} expired")
    return {"seconds": seconds, "objects": deleted, "per_second": deleted / seconds}


async def main(runs: int, rounds: int) -> None:
    """Alternate the two sides for `rounds` rounds and print the best of each as JSON."""
    dsn = os.environ["MARKETSENSE_TEST_PG_DSN"]
    best: dict[str, dict[str, float]] = {}
    for _ in range(rounds):
        for side, batch in (("one_per_batch", 1), ("batch_1000", 1000)):
            figures = await one_pass(dsn, runs=runs, batch=batch)
            if side not in best or figures["seconds"] < best[side]["seconds"]:
                best[side] = figures
    ratio = best["one_per_batch"]["seconds"] / best["batch_1000"]["seconds"]
    print(
        json.dumps(
            {
                "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                "python": platform.python_version(),
                "runs": runs,
                "sides": best,
                "batch_speedup": round(ratio, 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=250, help="expired runs (4 objects each)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per side; the best counts")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.runs, arguments.rounds))
