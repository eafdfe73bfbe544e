"""The orchestrator shows the newest retention pass's audit row as gauges."""

from __future__ import annotations

import datetime as dt

from prometheus_client import REGISTRY

from marketsense.common.db.engine import Database
from marketsense.common.db.models import RetentionPass
from marketsense.orchestrator.retention_gauges import RetentionGauges

START = dt.datetime(2026, 12, 1, 3, tzinfo=dt.UTC)


def _pass(minutes: int, seconds: int, *, error: str | None, dry_run: bool = False) -> RetentionPass:
    started = START + dt.timedelta(minutes=minutes)
    counts = {
        "prefixes": {"raw/": {"objects": 10 + minutes, "bytes": 4096 * (10 + minutes)}},
        "tables": {"raw_objects": 10 + minutes, "runs": 1},
        "kept": {"held": 2},
    }
    return RetentionPass(
        started_at=started,
        finished_at=started + dt.timedelta(seconds=seconds),
        dry_run=dry_run,
        counts=counts,
        bytes_freed=4096 * (10 + minutes),
        error=error,
    )


def _sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_gauges_show_the_newest_pass_and_the_newest_success(database: Database) -> None:
    async with database.session() as session:
        session.add_all(
            [
                _pass(0, 30, error=None),
                _pass(60, 12, error="RetryableError: S3 delete failed"),
                _pass(90, 5, error=None, dry_run=True),
            ]
        )
        await session.commit()

    await RetentionGauges(database, interval_seconds=60).refresh()

    assert _sample("marketsense_retention_deleted_objects", prefix="raw/") == 70
    assert _sample("marketsense_retention_freed_bytes", prefix="raw/") == 4096 * 70
    assert _sample("marketsense_retention_deleted_rows", table="runs") == 1
    assert _sample("marketsense_retention_kept_expired", reason="held") == 2
    assert _sample("marketsense_retention_pass_duration_seconds") == 12
    assert _sample("marketsense_retention_last_pass_failed") == 1
    success = (START + dt.timedelta(seconds=30)).timestamp()
    assert _sample("marketsense_retention_last_success_timestamp_seconds") == success
