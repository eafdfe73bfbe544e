"""What the story shows once it ran, read back from the APIs: the milestones, the spans' Sharpe
ratios beside the perfect-knowledge model's, and the monitoring report with the events marked."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd

from marketsense.cli.report import ReportData, ReportEvent
from marketsense.cli.story import StoryApis, StoryLog
from marketsense.cli.story_figures import (
    book_returns,
    perfect_resolved,
    production_returns,
    span_days,
    span_sharpes,
)
from marketsense.cli.story_plan import StoryPlan
from marketsense.cli.story_reads import answer, every_item, version_daily
from marketsense.cli.story_summary import (
    Milestones,
    StoryFigures,
    alert_session,
    promoted_session,
    retrained,
    serving_session,
)
from marketsense.ingestion.sources.simulated import SimulatedMarket


@dataclass(frozen=True)
class StoryOutcome:
    """The figures, and the report's data with the events marked."""

    figures: StoryFigures
    report: ReportData


async def milestones(apis: StoryApis, plan: StoryPlan, log: StoryLog, model: str) -> Milestones:
    """The sessions of the first decay alert after the flip, the first retrain done, its
    promotion and its first serving session."""
    alerts = await every_item(apis.monitoring, "/v1/decay-alerts", {"model": model})
    retrains = await every_item(apis.retraining, "/v1/retrains")
    history = await every_item(apis.registry, f"/v1/models/{model}/aliases/production/history")
    promoted = [str(h["to_version"]) for h in history if h.get("to_version") is not None]
    version, ready = retrained(retrains, log.starts, promoted)
    return Milestones(
        alert=alert_session(plan, alerts),
        retrained=ready,
        promoted=promoted_session(history, version, log.starts),
        serving=serving_session(log.served, version),
        new_version=version,
    )


def events(plan: StoryPlan, marks: Milestones) -> list[ReportEvent]:
    """The report's markers: the flip, and each milestone that happened."""
    found = [ReportEvent(plan.flip_day, "text signal flips")]
    steps = (
        (marks.alert, "decay alert"),
        (marks.retrained, f"retrained v{marks.new_version} ready"),
        (marks.promoted, f"v{marks.new_version} promoted"),
        (marks.serving, f"v{marks.new_version} serving"),
    )
    found += [ReportEvent(plan.sessions[s], label) for s, label in steps if s is not None]
    return found


async def report_data(
    apis: StoryApis, model: str, daily: dict[str, pd.DataFrame], found: list[ReportEvent]
) -> ReportData:
    """The monitoring report's data as `marketsense report` gathers it, with the events."""
    performance = answer(
        await apis.monitoring.get("/v1/performance", params={"model": model}), "GET /v1/performance"
    )
    order = [str(v["version"]) for v in performance["versions"]]
    alerts = await every_item(apis.monitoring, "/v1/decay-alerts", {"model": model})
    drift = await every_item(apis.monitoring, "/v1/drift", {"model": model, "limit": 500})
    return ReportData(
        model=model,
        windows=performance["windows"],
        decay_ratio=performance["decay_ratio"],
        decay_reference_days=performance["decay_reference_days"],
        daily={v: daily[v] for v in order if v in daily and not daily[v].empty},
        aliases={str(v["version"]): v["aliases"] for v in performance["versions"]},
        drift=_frame(drift, ["as_of", "run_id", "feature", "statistic", "drifted"], "as_of"),
        alerts=_frame(
            [{**a, "version": a["model_version"]} for a in alerts],
            ["day", "version", "sharpe", "threshold", "reason"],
            "day",
        ),
        events=found,
    )


def _frame(rows: list[dict[str, Any]], columns: list[str], day: str) -> pd.DataFrame:
    """Rows as a frame of `columns`, the `day` column as dates."""
    frame = pd.DataFrame(rows, columns=columns)
    frame[day] = [dt.date.fromisoformat(str(d)) for d in frame[day]]
    return frame


async def story_outcome(
    apis: StoryApis,
    plan: StoryPlan,
    log: StoryLog,
    *,
    symbols: list[str],
    market: SimulatedMarket,
    model: str,
    seconds: float,
) -> StoryOutcome:
    """Read the milestones and every served version's book; compare with perfect knowledge."""
    marks = await milestones(apis, plan, log, model)
    versions = set(log.served.values()) | ({marks.new_version} if marks.new_version else set())
    daily = {v: await version_daily(apis.monitoring, model, v) for v in sorted(versions)}
    returns = {v: frame["strategy_return"] for v, frame in daily.items() if not frame.empty}
    served = {plan.sessions[s]: v for s, v in log.served.items()}
    production = production_returns(served, returns, plan.sessions)
    perfect = book_returns(perfect_resolved(market, symbols, plan.sessions))
    spans = span_sharpes(production, perfect, span_days(plan, marks.serving))
    figures = StoryFigures(milestones=marks, flip=plan.flip, spans=spans, seconds=seconds)
    report = await report_data(apis, model, daily, events(plan, marks))
    return StoryOutcome(figures=figures, report=report)
