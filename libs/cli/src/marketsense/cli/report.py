"""The monitoring report: one self-contained HTML page of plotly charts (equity curves, rolling
Sharpe against the decay threshold, accuracy, drift, versions over time, decay alerts)."""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# plotly ships no type information; its figures are typed as Any here.
import plotly.graph_objects as go  # type: ignore[import-untyped]
from plotly.subplots import make_subplots  # type: ignore[import-untyped]

from marketsense.monitoring.decay import decay_threshold

TRADING_DAYS = 252

PALETTES: dict[str, list[str]] = {
    "equity": ["#1f4e9c", "#5fa8e8", "#0b2a5a"],
    "sharpe": ["#e07b00", "#f4b860", "#8a4b00"],
    "accuracy": ["#1e8a3a", "#7fd08f", "#0e4a1e"],
    "drift": ["#7a3fb0", "#b48ae0", "#4a1d75", "#d3b8f0", "#2f0f4f", "#9b6ad0"],
    "versions": ["#8c564b", "#c49c94", "#5a3028"],
}
"""One family of colours per chart, so a screenshot shows which charts drew their lines."""
BENCHMARK_COLOUR = "#7f7f7f"
THRESHOLD_COLOUR = "#d62728"
ALERT_COLOUR = "#000000"
EVENT_COLOUR = "#2ca02c"

TITLES = (
    "Equity: the long-short book after costs, and the benchmark",
    "Rolling Sharpe ratio, with the decay threshold",
    "Daily directional accuracy",
    "Feature drift per run (Kolmogorov-Smirnov statistic)",
    "Versions judged over time, and decay alerts",
)


@dataclass(frozen=True)
class ReportEvent:
    """A moment marked on every chart: a vertical line at `day`, labelled on the top chart."""

    day: dt.date
    label: str


@dataclass(frozen=True)
class ReportData:
    """What the report shows, as read from the monitoring API."""

    model: str
    windows: list[int] = field(default_factory=list)
    decay_ratio: float = 1.1
    decay_reference_days: int = 252
    daily: dict[str, pd.DataFrame] = field(default_factory=dict)
    """Each version's daily figures (index `day` ascending), the production version first."""
    aliases: dict[str, list[str]] = field(default_factory=dict)
    drift: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Columns as_of, run_id, feature, statistic, drifted."""
    alerts: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Columns day, version, sharpe, threshold, reason."""
    events: list[ReportEvent] = field(default_factory=list)
    """Moments to mark, such as a regime flip, a decay alert, a retrain or a promotion."""


def equity_curve(returns: pd.Series) -> pd.Series:
    """Growth of one unit compounded over the daily returns."""
    growth: pd.Series = (1.0 + returns).cumprod()
    return growth


def rolling_sharpe(returns: pd.Series, window: int) -> pd.Series:
    """Annualised Sharpe ratio over each trailing `window` days; NaN before a full window and
    where the returns do not vary."""
    rolling = returns.rolling(window, min_periods=window)
    std = rolling.std(ddof=1)
    sharpe: pd.Series = rolling.mean() / std.where(std > 0) * np.sqrt(TRADING_DAYS)
    return sharpe


def policy_threshold(benchmark: pd.Series, *, ratio: float, reference_days: int) -> pd.Series:
    """The Sharpe ratio the decay policy held the book to on each day: its rule
    (`decay.decay_threshold`) on the benchmark's Sharpe over the trailing `reference_days` days
    (fewer at the start; a flat benchmark counts as cash, Sharpe 0)."""
    rolling = benchmark.rolling(reference_days, min_periods=2)
    std = rolling.std(ddof=1)
    annualised = rolling.mean() / std.where(std > 0) * np.sqrt(TRADING_DAYS)
    sharpe = annualised.where(std > 0, 0.0).where(std.notna())
    threshold: pd.Series = sharpe.map(
        lambda value: decay_threshold(value, ratio) if np.isfinite(value) else np.nan
    )
    return threshold


def _label(data: ReportData, version: str) -> str:
    aliases = data.aliases.get(version, [])
    return f"v{version}" + (f" ({', '.join(aliases)})" if aliases else "")


def _colour(chart: str, index: int) -> str:
    palette = PALETTES[chart]
    return palette[index % len(palette)]


def _performance_traces(figure: go.Figure, data: ReportData) -> None:
    """Equity, rolling Sharpe with its threshold, and accuracy, per version."""
    window = data.windows[0] if data.windows else 21
    for i, (version, daily) in enumerate(data.daily.items()):
        label, days = _label(data, version), list(daily.index)
        figure.add_scatter(
            x=days,
            y=equity_curve(daily["strategy_return"]),
            name=f"{label} book",
            line={"color": _colour("equity", i), "width": 3},
            row=1,
            col=1,
        )
        figure.add_scatter(
            x=days,
            y=equity_curve(daily["benchmark_return"]),
            name=f"{label} benchmark",
            line={"color": BENCHMARK_COLOUR, "width": 2, "dash": "dot"},
            row=1,
            col=1,
        )
        figure.add_scatter(
            x=days,
            y=rolling_sharpe(daily["strategy_return"], window),
            name=f"{label} Sharpe ({window} days)",
            line={"color": _colour("sharpe", i), "width": 3},
            row=2,
            col=1,
        )
        threshold = policy_threshold(
            daily["benchmark_return"],
            ratio=data.decay_ratio,
            reference_days=data.decay_reference_days,
        )
        figure.add_scatter(
            x=days,
            y=threshold,
            name=f"{label} decay threshold ({data.decay_ratio:g} x benchmark)",
            line={"color": THRESHOLD_COLOUR, "width": 2, "dash": "dash"},
            row=2,
            col=1,
        )
        accuracy = daily["hits"] / daily["predictions"].where(daily["predictions"] > 0)
        figure.add_scatter(
            x=days,
            y=accuracy,
            name=f"{label} accuracy",
            mode="lines+markers",
            line={"color": _colour("accuracy", i), "width": 3},
            row=3,
            col=1,
        )
        figure.add_scatter(
            x=days,
            y=[label] * len(days),
            name=f"{label} judged",
            mode="markers",
            marker={"color": _colour("versions", i), "size": 9, "symbol": "square"},
            row=5,
            col=1,
        )


def _drift_traces(figure: go.Figure, data: ReportData) -> None:
    """Each feature's statistic over runs, drifted runs marked."""
    if data.drift.empty:
        return
    for i, (feature, rows) in enumerate(data.drift.sort_values("as_of").groupby("feature")):
        figure.add_scatter(
            x=rows["as_of"],
            y=rows["statistic"],
            name=f"drift {feature}",
            mode="lines+markers",
            line={"color": _colour("drift", i), "width": 3},
            marker={"symbol": np.where(rows["drifted"], "x", "circle"), "size": 9},
            row=4,
            col=1,
        )


def _alert_traces(figure: go.Figure, data: ReportData) -> None:
    """Decay alerts on the Sharpe chart (at the Sharpe that raised them) and on the timeline."""
    if data.alerts.empty:
        return
    alerts = data.alerts
    labels = [_label(data, str(v)) for v in alerts["version"]]
    reasons = [html.escape(str(r)) for r in alerts["reason"]]
    figure.add_scatter(
        x=alerts["day"],
        y=alerts["sharpe"],
        name="decay alert",
        mode="markers",
        marker={"color": ALERT_COLOUR, "size": 14, "symbol": "triangle-down"},
        hovertext=reasons,
        row=2,
        col=1,
    )
    figure.add_scatter(
        x=alerts["day"],
        y=labels,
        name="decay alert (version)",
        mode="markers",
        marker={"color": ALERT_COLOUR, "size": 16, "symbol": "triangle-down"},
        hovertext=reasons,
        showlegend=False,
        row=5,
        col=1,
    )


def _event_markers(figure: go.Figure, data: ReportData) -> None:
    """A dashed vertical line per event on each chart, its label above the top chart's line;
    labels of events close together are staggered so they stay readable."""
    for i, event in enumerate(sorted(data.events, key=lambda e: e.day)):
        stamp = dt.datetime.combine(event.day, dt.time()).isoformat()
        for row in range(1, len(TITLES) + 1):
            # The shape and its label are added apart: plotly cannot place a line's own label
            # on a date axis.
            figure.add_vline(
                x=stamp,
                line={"color": EVENT_COLOUR, "width": 2, "dash": "dash"},
                row=row,
                col=1,
                exclude_empty_subplots=False,
            )
        figure.add_annotation(
            x=stamp,
            y=1.0 - 0.08 * (i % 4),
            yref="y domain",
            text=html.escape(event.label),
            showarrow=False,
            xanchor="left",
            font={"color": EVENT_COLOUR, "size": 13},
            bgcolor="rgba(255,255,255,0.8)",
            row=1,
            col=1,
        )


def report_figure(data: ReportData) -> go.Figure:
    """The five charts stacked; drift has its own time axis, over the runs it was measured in."""
    figure = make_subplots(rows=5, cols=1, vertical_spacing=0.05, subplot_titles=TITLES)
    _performance_traces(figure, data)
    _drift_traces(figure, data)
    _alert_traces(figure, data)
    _event_markers(figure, data)
    figure.update_layout(
        height=2600,
        template="plotly_white",
        margin={"t": 60, "l": 70, "r": 30, "b": 40},
        legend={"orientation": "h", "y": -0.03},
    )
    figure.update_yaxes(title_text="growth of 1", row=1, col=1)
    figure.update_yaxes(title_text="annualised Sharpe", row=2, col=1)
    figure.update_yaxes(title_text="share right", tickformat=".0%", row=3, col=1)
    figure.update_yaxes(title_text="KS statistic", row=4, col=1)
    return figure


def render(data: ReportData, *, generated: dt.datetime) -> str:
    """The whole page: a heading, then the charts with plotly's script inline (no network
    needed to open it), or a sentence saying there is nothing to plot yet."""
    title = f"marketsense monitoring report: {html.escape(data.model)}"
    head = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body style='font-family:sans-serif;margin:0 1em'><h1>{title}</h1>"
        f"<p>Generated {generated:%Y-%m-%d %H:%M} UTC from the monitoring API.</p>"
    )
    if not data.daily:
        return head + f"<p class='empty'>{html.escape(empty_message(data.model))}</p></body></html>"
    versions = ", ".join(
        f"{_label(data, v)}: {len(d)} days to {d.index[-1]}" for v, d in data.daily.items()
    )
    chart = report_figure(data).to_html(include_plotlyjs=True, full_html=False)
    return head + f"<p>{html.escape(versions)}</p>{chart}</body></html>"


def empty_message(model: str) -> str:
    """What the report says when a model has no performance to plot."""
    return (
        f"No performance is stored for model {model} yet: its predictions' outcomes resolve "
        "once the next trading day's bars arrive, so there is nothing to plot."
    )
