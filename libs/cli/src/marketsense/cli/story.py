"""The feedback loop told as a story, through the services' APIs only: an opening backfill, daily
runs past the flip of the texts' signal until the retrained model serves, a closing backfill, and
what happened, read back from the APIs.

A session of the story lasts until the pipeline's work for that day is done, as a trading day
outlasts it: the run, monitoring's judgement of the day, a retrain that a decay alert asked for,
and a promoted model's swap on every prediction process. So the days the loop takes are counted
in sessions, whatever the machine's speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from marketsense.cli.backfill import BackfillRefused, run_backfill
from marketsense.cli.story_plan import StoryPlan
from marketsense.cli.story_reads import (
    StoryRefused,
    answer,
    every_item,
    latest_version,
    newest_judged_day,
    production_version,
    serves,
)
from marketsense.cli.story_summary import parse_instant
from marketsense.common.states import FINISHED_RUN_STATES, RunState

POLL_SECONDS = 0.25
"""How often the story reads a state it waits on."""

SETTLE_SECONDS = 900.0
"""Longest wait for one session's work (a retrain included) before the story gives up."""

REQUEST_SECONDS = 30.0
"""Longest wait for a decay alert's retrain request to show in the retrains list."""

ACTIVE_RETRAIN_STATES = frozenset({"REQUESTED", "TRAINING", "PUSHING"})
"""Retrain states that finish within the session; WAITING waits for days of data to come."""


@dataclass(frozen=True)
class StoryApis:
    """A client per service (in one process, the same client for each), and a client per
    prediction process whose `/readyz` says what it serves."""

    orchestrator: httpx.AsyncClient
    prediction: httpx.AsyncClient
    monitoring: httpx.AsyncClient
    registry: httpx.AsyncClient
    retraining: httpx.AsyncClient
    replicas: tuple[httpx.AsyncClient, ...] = ()

    @classmethod
    def one(cls, client: httpx.AsyncClient) -> StoryApis:
        """Every service behind one client: the pipeline in one process."""
        return cls(client, client, client, client, client, (client,))


@dataclass
class StoryLog:
    """What the story did: when each run started (for placing timestamps in sessions) and the
    version production answered with in each session."""

    starts: list[tuple[dt.datetime, int]] = field(default_factory=list)
    served: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def wait_for(check: Callable[[], Awaitable[bool]], *, seconds: float, what: str) -> None:
    """Poll `check` until it holds; StoryRefused naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            raise StoryRefused(f"gave up after {seconds:.0f} s waiting for {what}")
        await asyncio.sleep(POLL_SECONDS)


async def daily_run(api: httpx.AsyncClient, day: dt.date, symbols: list[str]) -> dict[str, Any]:
    """POST one day's run and wait for it to finish; StoryRefused unless it predicted."""
    body = {"as_of": day.isoformat(), "symbols": symbols}
    run: dict[str, Any] = answer(await api.post("/v1/runs", json=body), f"the run of {day}")
    while run["state"] not in FINISHED_RUN_STATES:
        await asyncio.sleep(POLL_SECONDS)
        run = answer(await api.get(f"/v1/runs/{run['id']}"), f"the run of {day}")
    if run["state"] not in (RunState.SUCCESS, RunState.PARTIAL):
        raise StoryRefused(f"the run of {day} ended {run['state']}")
    return run


async def backfill(
    apis: StoryApis, plan: StoryPlan, first: int, last: int, symbols: list[str], console: Console
) -> None:
    """Sessions `first` to `last` as one backfill through the orchestrator's API."""
    try:
        result = await run_backfill(
            apis.orchestrator,
            start=plan.sessions[first],
            end=plan.sessions[last],
            symbols=symbols,
            console=console,
        )
    except BackfillRefused as exc:
        raise StoryRefused(f"the backfill of sessions {first}-{last}: {exc}") from exc
    if result["run"]["state"] not in (RunState.SUCCESS, RunState.PARTIAL):
        raise StoryRefused(
            f"the backfill of sessions {first}-{last} ended {result['run']['state']}"
        )


async def settle(apis: StoryApis, day: dt.date, model: str, alerts_before: int) -> None:
    """Wait for the session's work to end: monitoring judged `day`; a new decay alert's retrain
    request was taken and its training ended; a new production version serves everywhere."""

    async def judged() -> bool:
        newest = await newest_judged_day(apis.monitoring, model)
        return newest is not None and newest >= day

    await wait_for(judged, seconds=SETTLE_SECONDS, what=f"monitoring to judge {day}")
    alerts = await every_item(apis.monitoring, "/v1/decay-alerts", {"model": model})
    if len(alerts) > alerts_before:
        raised = min(parse_instant(a["created_at"]) for a in alerts[: len(alerts) - alerts_before])

        async def requested() -> bool:
            retrains = await every_item(apis.retraining, "/v1/retrains")
            return any(parse_instant(r["requested_at"]) >= raised for r in retrains)

        # A request the worker folds into one under way shows no row of its own.
        with contextlib.suppress(StoryRefused):
            await wait_for(requested, seconds=REQUEST_SECONDS, what="the retrain request")

    async def trained() -> bool:
        retrains = await every_item(apis.retraining, "/v1/retrains")
        return not any(r["state"] in ACTIVE_RETRAIN_STATES for r in retrains)

    await wait_for(trained, seconds=SETTLE_SECONDS, what="the retrain under way")
    await swapped(apis, model)


async def swapped(apis: StoryApis, model: str) -> None:
    """Wait until every prediction process serves the production version."""
    version = await production_version(apis.registry, model)
    if version is None:
        return

    async def everywhere() -> bool:
        bodies = [(await replica.get("/readyz")).json() for replica in apis.replicas]
        return all(serves(body, model, version) for body in bodies)

    await wait_for(everywhere, seconds=SETTLE_SECONDS, what=f"{model} v{version} to serve")


async def run_story(
    apis: StoryApis, plan: StoryPlan, symbols: list[str], *, model: str, console: Console
) -> StoryLog:
    """Drive the pipeline through the plan; return when and what production served."""
    log = StoryLog()
    opening = plan.first_backfill - 1
    console.print(f"opening backfill: {plan.sessions[0]} to {plan.sessions[opening]}")
    log.starts.append((_now(), 0))
    initial = await production_version(apis.registry, model)
    await backfill(apis, plan, 0, opening, symbols, console)
    initial = await served_by(apis, plan.sessions[opening], symbols[0], initial, model)
    await settle(apis, plan.sessions[opening], model, alerts_before=0)
    log.served.update(dict.fromkeys(range(plan.first_backfill), initial))
    last = await daily_phase(apis, plan, symbols, model=model, log=log, console=console)
    if last < len(plan.sessions) - 1:
        console.print(f"closing backfill: {plan.sessions[last + 1]} to {plan.sessions[-1]}")
        log.starts.append((_now(), last + 1))
        final = await production_version(apis.registry, model)
        await backfill(apis, plan, last + 1, len(plan.sessions) - 1, symbols, console)
        final = await served_by(apis, plan.sessions[-1], symbols[0], final, model)
        await settle(apis, plan.sessions[-1], model, alerts_before=await _alerts(apis, model))
        log.served.update(dict.fromkeys(range(last + 1, len(plan.sessions)), final))
    return log


async def served_by(
    apis: StoryApis, day: dt.date, symbol: str, production: str | None, model: str
) -> str:
    """The version production's predictions of `day` came from: the one the registry named when
    the run started (the session before settled its swap on every process), checked against
    the day's stored predictions; without a registered production, the latest prediction's."""
    if production is None:
        return await latest_version(apis.prediction, symbol)
    rows = await every_item(
        apis.prediction, "/v1/predictions", {"as_of": day.isoformat(), "symbols": symbol}
    )
    versions = {str(row["model_version"]) for row in rows}
    if production in versions:
        return production
    # Monitoring decides a challenge after the run before it was judged, so a promotion can land
    # while this run predicts: then the day's predictions come from the version promoted.
    now = await production_version(apis.registry, model)
    if now is not None and now in versions:
        return now
    raise StoryRefused(f"no prediction of {symbol} on {day} came from production v{production}")


async def _alerts(apis: StoryApis, model: str) -> int:
    return len(await every_item(apis.monitoring, "/v1/decay-alerts", {"model": model}))


async def daily_phase(
    apis: StoryApis,
    plan: StoryPlan,
    symbols: list[str],
    *,
    model: str,
    log: StoryLog,
    console: Console,
) -> int:
    """Run the sessions after the opening backfill one by one until the plan says stop; print
    what each changed; return the last session run."""
    initial, serving_since = log.served[plan.first_backfill - 1], None
    seen = Seen()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as progress:
        bar = progress.add_task("daily runs", total=plan.last_daily - plan.first_backfill + 1)
        for session in range(plan.first_backfill, plan.last_daily + 1):
            day = plan.sessions[session]
            progress.update(bar, description=f"daily run {day}")
            before = await _alerts(apis, model)
            log.starts.append((_now(), session))
            production = await production_version(apis.registry, model)
            await daily_run(apis.orchestrator, day, symbols)
            log.served[session] = await served_by(apis, day, symbols[0], production, model)
            await settle(apis, day, model, alerts_before=before)
            if serving_since is None and log.served[session] != initial:
                serving_since = session
            for line in await seen.news(apis, model):
                progress.console.print(f"{day} (flip {session - plan.flip:+d}): {line}")
            progress.advance(bar)
            if plan.daily_done(session, serving_since):
                return session
    return plan.last_daily


@dataclass
class Seen:
    """What the story has already reported, so each session prints only what changed."""

    alerts: set[int] = field(default_factory=set)
    retrains: dict[str, str] = field(default_factory=dict)
    challenges: dict[str, str] = field(default_factory=dict)
    production: str | None = None

    async def news(self, apis: StoryApis, model: str) -> list[str]:
        """One line per new decay alert, retrain or challenge state, and production move."""
        lines = []
        for alert in await every_item(apis.monitoring, "/v1/decay-alerts", {"model": model}):
            if alert["id"] not in self.alerts:
                self.alerts.add(alert["id"])
                lines.append(f"decay alert on v{alert['model_version']}: {alert['reason']}")
        for retrain in await every_item(apis.retraining, "/v1/retrains"):
            if self.retrains.get(str(retrain["id"])) != retrain["state"]:
                self.retrains[str(retrain["id"])] = retrain["state"]
                version = f" v{retrain['version']}" if retrain.get("version") else ""
                lines.append(f"retrain {retrain['state']}{version}")
        for challenge in await every_item(apis.monitoring, "/v1/challenges"):
            if self.challenges.get(str(challenge["id"])) != challenge["state"]:
                self.challenges[str(challenge["id"])] = challenge["state"]
                lines.append(
                    f"challenge v{challenge['challenger_version']} against "
                    f"v{challenge['champion_version']}: {challenge['state']}"
                )
        production = await production_version(apis.registry, model)
        if self.production is not None and production != self.production:
            lines.append(f"production moved from v{self.production} to v{production}")
        self.production = production
        return lines
