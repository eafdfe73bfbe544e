"""The story's driver on the real services in one process, on the embedded default and the real
servers: backfills and daily runs in the plan's order, production's version read each session,
and the books read back from monitoring; a run the orchestrator refuses stops it with its reason."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from rich.console import Console

from marketsense.cli.embedded import PipelineSettings, build_pipeline_app
from marketsense.cli.story import StoryApis, daily_run, run_story
from marketsense.cli.story_figures import SPANS
from marketsense.cli.story_outcome import story_outcome
from marketsense.cli.story_plan import story_plan, story_sessions
from marketsense.cli.story_reads import StoryRefused, every_item
from marketsense.common.auth import Role
from marketsense.common.calendar import exchange_calendar
from marketsense.ingestion.sources import simulated_market
from marketsense.monitoring.returns_stats import sharpe_ratio
from tests.backends import real_servers
from tests.conftest import INTEGRATION, TEST_AS_OF
from tests.model_registry_rows import new_api_key

SYMBOLS = [f"T{i:02d}" for i in range(6)]
THANKSGIVING = TEST_AS_OF.replace(day=26)


@pytest.fixture(params=["embedded", pytest.param("real", marks=INTEGRATION)])
def settings(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    prefix: str,
    predictor_dir: Path,
    sentiment_model_dir: Path,
) -> PipelineSettings:
    """Embedded default (SQLite, folder, in-process bus) or the real servers."""
    values: dict[str, object] = {
        "home": tmp_path / "home",
        "handler_retry_base_seconds": 0.01,
        "predictor_path": predictor_dir,
        "sentiment_model_path": sentiment_model_dir,
    }
    if request.param == "real":
        values |= real_servers(
            database_url=request.getfixturevalue("fresh_pg_database_url"), prefix=prefix
        )
    return PipelineSettings(**values)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def restored_logging() -> Iterator[None]:
    """Put the root logger back as it was: the pipeline configures logging."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


async def test_the_story_runs_its_plan_through_the_apis_and_reads_the_books_back(
    settings: PipelineSettings,
) -> None:
    sessions = exchange_calendar().sessions(TEST_AS_OF.replace(month=9), TEST_AS_OF)
    plan = story_plan(
        story_sessions(TEST_AS_OF, 12, sessions),
        first_backfill=6,
        flip=7,
        max_daily_after_flip=2,
        serving_margin=0,
    )
    app = build_pipeline_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api,
    ):
        api.headers["X-API-Key"] = await new_api_key(
            app.state.runtime.database, role=Role.PUBLISHER
        )
        apis = StoryApis.one(api)
        log = await run_story(apis, plan, SYMBOLS, model="baseline-predictor", console=Console())
        outcome = await story_outcome(
            apis,
            plan,
            log,
            symbols=SYMBOLS,
            market=simulated_market(settings),
            model="baseline-predictor",
            seconds=1.0,
        )
        runs = await every_item(api, "/v1/runs", {"limit": 50})
        daily = await every_item(
            api, "/v1/performance/daily", {"model": "baseline-predictor", "version": "1"}
        )
        predicted = {
            day: len(await every_item(api, "/v1/predictions", {"as_of": day.isoformat()}))
            for day in plan.sessions
        }
        with pytest.raises(StoryRefused, match=r"the run of 2026-11-26: 422 .*Thanksgiving"):
            await daily_run(api, THANKSGIVING, SYMBOLS)

    # Sessions 0-5 as one backfill, 6-9 one by one (the flip at 7 plus two), 10-11 as one.
    assert [session for _, session in log.starts] == [0, 6, 7, 8, 9, 10]
    assert [start for start, _ in log.starts] == sorted(start for start, _ in log.starts)
    kinds = sorted((r["as_of"], r["kind"]) for r in runs)
    assert kinds == sorted(
        [(plan.sessions[5].isoformat(), "backfill"), (plan.sessions[11].isoformat(), "backfill")]
        + [(plan.sessions[s].isoformat(), "daily") for s in range(6, 10)]
    )
    assert predicted == dict.fromkeys(plan.sessions, len(SYMBOLS))
    assert log.served == dict.fromkeys(range(12), "1")
    # No loop in this pipeline: nothing after the flip but the flip itself.
    marks = outcome.figures.milestones
    assert (marks.alert, marks.retrained, marks.promoted, marks.serving) == (None,) * 4
    assert [e.label for e in outcome.report.events] == ["text signal flips"]
    # The production book is version 1's, as monitoring booked it, on the outcome days.
    returns = {d["day"]: d["strategy_return"] for d in daily}
    before = outcome.figures.spans[0]
    assert before.span == SPANS[0]
    assert before.days == 7
    want = sharpe_ratio(np.array([returns[d.isoformat()] for d in plan.sessions[1:8]]))
    assert before.production == pytest.approx(want)
    assert outcome.figures.spans[1].days == 4
    assert list(outcome.report.daily) == ["1"]
