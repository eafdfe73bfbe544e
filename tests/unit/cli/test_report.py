"""The report's series, each checked against a direct computation on real index returns, and
its page when there is nothing to plot."""

from __future__ import annotations

import datetime as dt
import html

import numpy as np
import pandas as pd

from marketsense.cli.report import (
    ReportData,
    decay_threshold,
    empty_message,
    equity_curve,
    render,
    rolling_sharpe,
)
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


def test_the_threshold_stays_above_the_benchmark_whatever_its_sign() -> None:
    benchmark = pd.Series([2.0, 0.0, -2.0, np.nan])
    threshold = decay_threshold(benchmark, 1.1)
    assert np.allclose(threshold.iloc[:3], [2.2, 0.0, -1.8], rtol=1e-12)
    assert np.isnan(threshold.iloc[3])
    assert (threshold.iloc[:3] >= benchmark.iloc[:3]).all()


def test_an_empty_history_gets_a_sentence_not_blank_charts() -> None:
    page = render(ReportData(model="baseline-predictor"), generated=dt.datetime(2026, 12, 5))
    assert html.escape(empty_message("baseline-predictor")) in page
    assert "plotly" not in page.lower()
