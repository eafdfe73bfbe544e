"""The report's series, each checked against a direct computation on real index returns, and
its page when there is nothing to plot."""

from __future__ import annotations

import datetime as dt
import html

import numpy as np
import pandas as pd
import pytest

from marketsense.cli.report import (
    ReportData,
    ReportEvent,
    empty_message,
    equity_curve,
    policy_threshold,
    render,
    report_figure,
    rolling_sharpe,
)
from marketsense.monitoring.decay import decay_threshold
from marketsense.monitoring.returns_stats import sharpe_ratio
from tests.monitoring_api_support import index_returns


def _sp500() -> pd.Series:
    returns: pd.Series = index_returns()["GSPC"].tail(120)
    return returns


def test_the_equity_curve_compounds_the_daily_returns() -> None:
    returns = _sp500()
    curve = equity_curve(returns)
    assert curve.iloc[-1] == np.prod(1 + returns.to_numpy())
    assert curve.iloc[0] == 1 + returns.iloc[0]


def test_the_rolling_sharpe_is_the_annualised_sharpe_of_each_trailing_window() -> None:
    returns = _sp500()
    sharpe = rolling_sharpe(returns, 21)
    assert sharpe.iloc[:20].isna().all()
    for end in (21, 60, 120):
        chunk = returns.to_numpy()[end - 21 : end]
        want = chunk.mean() / chunk.std(ddof=1) * np.sqrt(252)
        assert np.isclose(sharpe.iloc[end - 1], want, rtol=1e-12)


def test_flat_returns_have_no_sharpe_rather_than_an_infinite_one() -> None:
    assert rolling_sharpe(pd.Series([0.001] * 30), 21).isna().all()


def test_the_threshold_line_is_the_decay_policys_on_each_day() -> None:
    benchmark = pd.Series(np.random.default_rng(3).normal(0.0004, 0.01, 300))
    threshold = policy_threshold(benchmark, ratio=1.1, reference_days=252)

    assert np.isnan(threshold.iloc[0])
    for end in (2, 100, 252, 300):
        reference = sharpe_ratio(benchmark.to_numpy()[max(end - 252, 0) : end])
        assert reference is not None
        assert threshold.iloc[end - 1] == pytest.approx(decay_threshold(reference, 1.1))
    flat = policy_threshold(pd.Series([0.001] * 5), ratio=1.1, reference_days=252)
    assert list(flat.iloc[1:]) == [0.0] * 4


def test_an_empty_history_gets_a_sentence_not_blank_charts() -> None:
    page = render(ReportData(model="baseline-predictor"), generated=dt.datetime(2026, 12, 5))
    assert html.escape(empty_message("baseline-predictor")) in page
    assert "plotly" not in page.lower()


def test_events_are_dashed_lines_on_every_chart_labelled_on_the_top_one() -> None:
    returns = _sp500()
    days = [d.date() for d in pd.bdate_range("2026-01-05", periods=len(returns))]
    daily = pd.DataFrame(
        {
            "strategy_return": returns.to_numpy(),
            "benchmark_return": returns.to_numpy() / 2,
            "hits": 6,
            "predictions": 10,
        },
        index=pd.Index(days, name="day"),
    )
    flip, promoted = days[40], days[70]
    data = ReportData(
        model="m",
        daily={"1": daily},
        events=[ReportEvent(promoted, "promoted v2"), ReportEvent(flip, "signal flips")],
    )

    figure = report_figure(data)

    lines = [s for s in figure.layout.shapes if s.type == "line"]
    assert len(lines) == 2 * 5
    assert {s.x0[:10] for s in lines} == {flip.isoformat(), promoted.isoformat()}
    assert all(s.line.dash == "dash" and s.x0 == s.x1 for s in lines)
    assert {s.xref for s in lines} == {"x", "x2", "x3", "x4", "x5"}
    labels = {
        a.text: a for a in figure.layout.annotations if a.text in {"signal flips", "promoted v2"}
    }
    assert set(labels) == {"signal flips", "promoted v2"}
    assert labels["signal flips"].x[:10] == flip.isoformat()
    assert labels["signal flips"].yref == "y domain"
    page = render(data, generated=dt.datetime(2026, 12, 5, 12, 0))
    assert "signal flips" in page
    assert "promoted v2" in page
