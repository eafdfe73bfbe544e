"""`marketsense report`: the monitoring report as one HTML page, read from the monitoring API."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from marketsense.cli.output import ApiKey, err, fail
from marketsense.cli.perf_commands import DEFAULT_MONITORING_URL, Model, MonitoringUrl, monitoring
from marketsense.cli.report import ReportData, empty_message, render
from marketsense.common.api_client import ApiError
from marketsense.monitoring.client import MonitoringClient

PAGE = 500
"""Entries per request: the API's largest page."""


def register(app: typer.Typer) -> None:
    """Add the `report` command to the `marketsense` command."""
    app.command("report")(report)


def daily_series(client: MonitoringClient, *, model: str, version: str, days: int) -> pd.DataFrame:
    """A version's last `days` daily figures, oldest first (index `day`)."""
    rows: list[dict[str, object]] = []
    cursor: str | None = None
    while len(rows) < days:
        page = client.performance_daily(
            model=model, version=version, limit=min(PAGE, days - len(rows)), cursor=cursor
        )
        rows.extend(item.model_dump() for item in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    frame = pd.DataFrame(rows).set_index("day").sort_index()
    return frame.astype({"ic": float, "rank_ic": float})


def drift_since(client: MonitoringClient, *, model: str, start: dt.date) -> pd.DataFrame:
    """The model's drift measurements of runs from `start` on."""
    rows: list[dict[str, object]] = []
    cursor: str | None = None
    while True:
        page = client.drift(model=model, limit=PAGE, cursor=cursor)
        rows.extend(item.model_dump() for item in page.items if item.as_of >= start)
        cursor = page.next_cursor
        if cursor is None or page.items[-1].as_of < start:
            break
    return pd.DataFrame(rows, columns=["as_of", "run_id", "feature", "statistic", "drifted"])


def gather(client: MonitoringClient, *, model: str | None, days: int) -> ReportData:
    """Everything the report plots; no versions when the model has no stored performance."""
    try:
        performance = client.performance(model=model)
    except ApiError as exc:
        if exc.status == 404 and "has no stored performance" in exc.detail:
            return ReportData(model=model or "the monitored model")
        raise
    name = performance.model
    daily = {
        v.version: daily_series(client, model=name, version=v.version, days=days)
        for v in performance.versions
    }
    start = min(frame.index[0] for frame in daily.values())
    alerts = pd.DataFrame(
        [
            {**a.model_dump(), "version": a.model_version}
            for a in client.decay_alerts(model=name, limit=PAGE).items
        ],
        columns=["day", "version", "sharpe", "threshold", "reason"],
    )
    return ReportData(
        model=name,
        windows=performance.windows,
        decay_ratio=performance.decay_ratio,
        decay_reference_days=performance.decay_reference_days,
        daily=daily,
        aliases={v.version: v.aliases for v in performance.versions},
        drift=drift_since(client, model=name, start=start),
        alerts=alerts[alerts["day"] >= start],
    )


def report(
    out: Annotated[Path, typer.Option(help="HTML file to write, such as report.html.")],
    model: Model = None,
    days: Annotated[
        int, typer.Option(min=2, max=5000, help="Trading days of history to plot.")
    ] = 252,
    url: MonitoringUrl = DEFAULT_MONITORING_URL,
    api_key: ApiKey = None,
) -> None:
    """Write one self-contained HTML page plotting the model's live performance (needs a
    reader key); it opens without a network."""
    if out.is_dir():
        raise fail(f"--out {out} is a folder; name a file, such as {out / 'report.html'}")
    if not out.parent.is_dir():
        raise fail(f"--out {out}: the folder {out.parent} does not exist")
    with monitoring(url, api_key) as client:
        data = gather(client, model=model, days=days)
    out.write_text(render(data, generated=dt.datetime.now(dt.UTC)), encoding="utf-8")
    if not data.daily:
        err.print(f"{empty_message(data.model)} The report at {out} says so.", soft_wrap=True)
        return
    err.print(f"report of {len(data.daily)} version(s) written to {out}", soft_wrap=True)
