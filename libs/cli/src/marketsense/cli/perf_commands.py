"""`marketsense perf show`: live performance per model version and window (monitoring API)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.table import Table

from marketsense.cli.output import ApiKey, AsJson, console, fail, print_json
from marketsense.common.api_client import ApiError
from marketsense.common.serve import DEFAULT_PORTS
from marketsense.monitoring.client import MonitoringClient
from marketsense.monitoring.schemas import PerformanceRead, WindowFiguresRead

DEFAULT_MONITORING_URL = f"http://127.0.0.1:{DEFAULT_PORTS['monitoring']}"

MonitoringUrl = Annotated[
    str,
    typer.Option("--url", envvar="MARKETSENSE_MONITORING_URL", help="Monitoring base URL."),
]
Model = Annotated[
    str | None, typer.Option(help="Registered model (default: the service's monitored model).")
]

Row = tuple[str, Callable[[WindowFiguresRead], str]]


def register(app: typer.Typer) -> None:
    """Add the `perf` command group to the `marketsense` command."""
    perf_app = typer.Typer(help="Live performance of the served models (monitoring API).")
    app.add_typer(perf_app, name="perf")
    perf_app.command("show")(perf_show)


@contextmanager
def monitoring(url: str, api_key: str | None) -> Iterator[MonitoringClient]:
    """A client for `url`; any refusal or failure to reach it is one error line and exit 1."""
    try:
        with MonitoringClient(url, api_key) as client:
            yield client
    except ApiError as exc:
        if exc.status is None:
            raise fail(f"{exc.detail}; is the monitoring service running?") from exc
        raise fail(f"{exc.status} from {url}: {exc.detail}") from exc


def _number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _interval(low: float | None, high: float | None) -> str:
    return "-" if low is None or high is None else f"{low:.2f} to {high:.2f}"


ROWS: list[Row] = [
    ("outcome days", lambda f: f"{f.days} (to {f.last_day})"),
    ("predictions", lambda f: str(f.predictions)),
    ("accuracy", lambda f: _percent(f.accuracy)),
    ("book hit rate", lambda f: _percent(f.hit_rate)),
    ("IC", lambda f: _number(f.ic, 3)),
    ("rank IC", lambda f: _number(f.rank_ic, 3)),
    ("Sharpe", lambda f: _number(f.strategy.sharpe)),
    ("Sharpe 95% interval", lambda f: _interval(f.strategy.sharpe_low, f.strategy.sharpe_high)),
    ("Sortino", lambda f: _number(f.strategy.sortino)),
    ("annual return", lambda f: _percent(f.strategy.annual_return)),
    ("annual volatility", lambda f: _percent(f.strategy.annual_volatility)),
    ("max drawdown", lambda f: _percent(f.strategy.max_drawdown)),
    ("benchmark Sharpe", lambda f: _number(f.benchmark.sharpe)),
    ("benchmark annual return", lambda f: _percent(f.benchmark.annual_return)),
    ("benchmark max drawdown", lambda f: _percent(f.benchmark.max_drawdown)),
]
"""Each row of the table: its label and how one window's figures fill its cell."""


def performance_table(performance: PerformanceRead) -> Table:
    """One column per version and window, the production version's first."""
    table = Table("", title=f"{performance.model}: the long-short book against the benchmark")
    cells: list[WindowFiguresRead] = []
    for version in performance.versions:
        named = f" ({', '.join(version.aliases)})" if version.aliases else ""
        for figures in version.windows:
            table.add_column(f"v{version.version}{named}\n{figures.window} days", justify="right")
            cells.append(figures)
    for label, cell in ROWS:
        table.add_row(label, *(cell(figures) for figures in cells))
    return table


def perf_show(
    model: Model = None,
    version: Annotated[str | None, typer.Option(help="Only this model version.")] = None,
    window: Annotated[
        int | None, typer.Option(min=2, help="Only this window, in trading days.")
    ] = None,
    as_json: AsJson = False,
    url: MonitoringUrl = DEFAULT_MONITORING_URL,
    api_key: ApiKey = None,
) -> None:
    """Print accuracy, IC, Sharpe and drawdown of the production version and any challenger,
    per window, side by side (needs a reader key)."""
    with monitoring(url, api_key) as client:
        performance = client.performance(model=model, version=version, window=window)
    if as_json:
        print_json(performance)
        return
    console.print(performance_table(performance))
