"""A replica's serving report: one row per replica and model, refreshed in place, withdrawn on
stop, and never a reason to stop serving when the database is away."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from marketsense.common.db.models import ModelServing
from marketsense.common.runtime import Runtime
from marketsense.common.settings import CommonSettings
from marketsense.models.serving_reports import ServingReport, ServingReporter, replica_id


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    """An embedded runtime with its storage started."""
    runtime = Runtime(CommonSettings(home=tmp_path / "home"), service="processing")
    await runtime.start_storage()
    yield runtime
    await runtime.stop()


def _report(version: str, variant: str = "int8") -> ServingReport:
    return ServingReport(
        service="processing", model="m", version=version, variant=variant, source="registry"
    )


async def _rows(runtime: Runtime) -> list[tuple[str, str, str, str]]:
    async with runtime.database.session() as session:
        rows = (await session.scalars(select(ModelServing).order_by(ModelServing.replica))).all()
    return [(r.replica, r.model_name, r.version, r.variant) for r in rows]


async def test_a_replica_keeps_one_row_per_model_refreshed_by_each_report(
    runtime: Runtime,
) -> None:
    first, second = ServingReporter(runtime, replica="a:1"), ServingReporter(runtime, replica="b:2")

    await first.report(_report("1"))
    async with runtime.database.session() as session:
        reported = await session.get(ModelServing, ("a:1", "m"))
        assert reported is not None
        earlier = reported.reported_at
    await first.report(_report("2", variant="fp32"))
    await second.report(_report("1"))

    assert await _rows(runtime) == [("a:1", "m", "2", "fp32"), ("b:2", "m", "1", "int8")]
    async with runtime.database.session() as session:
        refreshed = await session.get(ModelServing, ("a:1", "m"))
        assert refreshed is not None
        assert refreshed.reported_at >= earlier

    await first.withdraw("m")
    assert await _rows(runtime) == [("b:2", "m", "1", "int8")]


async def test_a_database_that_cannot_be_written_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = f"sqlite+aiosqlite:///{tmp_path / 'no-such-folder' / 'db.sqlite'}"
    settings = CommonSettings(home=tmp_path / "home", database_url=unreachable)
    runtime = Runtime(settings, service="processing")
    reporter = ServingReporter(runtime)

    try:
        with caplog.at_level(logging.WARNING):
            await reporter.report(_report("1"))
            await reporter.withdraw("m")
    finally:
        await runtime.stop()

    assert "cannot report serving m version 1" in caplog.text
    assert "cannot withdraw the serving report of m" in caplog.text


def test_the_replica_is_named_by_host_and_process_within_the_column_width() -> None:
    name = replica_id()
    host, pid = name.rsplit(":", 1)
    assert host
    assert int(pid) > 0
    assert len(name) <= 128
