"""Feature computation, run settlement and API input rules, without I/O."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from marketsense.common.errors import NonRetryableError
from marketsense.common.features import (
    FEATURE_COLUMNS,
    MIN_BARS,
    SENTIMENT_COLUMNS,
    compute_features,
    next_day_up,
)
from marketsense.common.states import RunState
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.orchestrator.runs.schemas import RunCreate
from marketsense.orchestrator.runs.service import final_state
from marketsense.prediction.scoring import signal_for
from marketsense.processing.service import feature_row

AS_OF = dt.date(2026, 11, 20)


def test_simulated_market_is_deterministic_and_consistent_across_as_of_days() -> None:
    a = SimulatedMarket(seed=7).daily_bars("AAPL", as_of=AS_OF, days=30)
    b = SimulatedMarket(seed=7).daily_bars("AAPL", as_of=AS_OF + dt.timedelta(days=7), days=40)
    pd.testing.assert_frame_equal(a, b[b["date"] <= AS_OF].tail(30).reset_index(drop=True))
    other = SimulatedMarket(seed=8).daily_bars("AAPL", as_of=AS_OF, days=30)
    assert not np.allclose(a["close"], other["close"])
    assert (a["low"] <= a[["open", "close"]].min(axis=1)).all()
    assert (a["high"] >= a[["open", "close"]].max(axis=1)).all()
    assert a["date"].iloc[-1] == AS_OF


def test_features_match_a_direct_computation_on_known_prices() -> None:
    dates = pd.bdate_range("2026-01-01", periods=60).date
    close = np.linspace(100, 159, 60)
    bars = pd.DataFrame(
        {"date": dates, "open": close, "high": close, "low": close, "close": close, "volume": 1e6}
    )
    features = compute_features(bars)
    assert len(features) == 60 - MIN_BARS + 1
    last = features.iloc[-1]
    assert last["ret_1d"] == pytest.approx(159 / 158 - 1, rel=1e-5)
    assert last["ret_5d"] == pytest.approx(159 / 154 - 1, rel=1e-5)
    assert last["ret_20d"] == pytest.approx(159 / 139 - 1, rel=1e-5)
    assert last["rsi_14"] == pytest.approx(100.0)  # prices only rose
    assert last["volume_z_20d"] == 0.0  # constant volume has no spread
    assert last["gap_overnight"] == pytest.approx(159 / 158 - 1, rel=1e-5)  # open vs last close
    ema12 = pd.Series(close).ewm(span=12, adjust=False).mean().iloc[-1]
    ema26 = pd.Series(close).ewm(span=26, adjust=False).mean().iloc[-1]
    assert last["macd"] == pytest.approx((ema12 - ema26) / 159, rel=1e-4)
    assert list(features.columns) == list(FEATURE_COLUMNS)


def test_days_without_texts_have_explicit_missing_sentiment_not_neutral_zeros() -> None:
    bars = SimulatedMarket(seed=7).daily_bars("X", as_of=AS_OF, days=40)
    day, other = bars["date"].iloc[-1], bars["date"].iloc[-2]
    scored = pd.DataFrame({"date": [day, day, day, other], "score": [0.8, -0.9, 0.1, 0.3]})
    features = compute_features(bars, scored)
    today, yesterday, before = features.iloc[-1], features.iloc[-2], features.iloc[-3]
    assert today["sentiment_count"] == 3
    assert today["sentiment_mean"] == pytest.approx(0.0, abs=1e-6)
    assert today["sentiment_pos_share"] == pytest.approx(1 / 3)
    assert today["sentiment_neg_share"] == pytest.approx(1 / 3)
    assert today["sentiment_strongest"] == pytest.approx(-0.9)  # signed, largest magnitude
    assert today["has_sentiment"] == 1
    assert yesterday["sentiment_mean"] == pytest.approx(0.3)
    assert before["sentiment_count"] == 0
    assert before["has_sentiment"] == 0
    for column in SENTIMENT_COLUMNS[:1] + SENTIMENT_COLUMNS[2:5]:
        assert np.isnan(before[column]), column


def test_label_is_whether_the_next_close_is_higher_and_unknown_for_the_last_day() -> None:
    bars = pd.DataFrame({"date": [1, 2, 3, 4], "close": [10.0, 11.0, 10.5, 10.5]})
    labels = next_day_up(bars)
    assert labels.tolist()[:3] == [True, False, False]
    assert pd.isna(labels.iloc[3])


def test_feature_row_refuses_bars_that_do_not_reach_the_run_day() -> None:
    bars = SimulatedMarket(seed=7).daily_bars("X", as_of=AS_OF - dt.timedelta(days=3), days=40)
    with pytest.raises(NonRetryableError, match="latest bar"):
        feature_row(bars, as_of=AS_OF, symbol="X")
    with pytest.raises(NonRetryableError, match="lack columns"):
        feature_row(bars.drop(columns=["volume"]), as_of=AS_OF, symbol="X")
    with pytest.raises(NonRetryableError, match="features need"):
        feature_row(bars.tail(5), as_of=AS_OF, symbol="X")


@pytest.mark.parametrize(
    ("failed", "total", "expected"),
    [
        (0, 100, RunState.SUCCESS),
        (1, 100, RunState.PARTIAL),
        (2, 100, RunState.FAILED),
        (3, 1000, RunState.PARTIAL),
        (1, 1, RunState.FAILED),
    ],
)
def test_run_final_state_follows_the_failure_threshold(
    failed: int, total: int, expected: RunState
) -> None:
    assert final_state(failed=failed, total=total, threshold=0.01) == expected


@pytest.mark.parametrize(
    ("prob", "signal"), [(0.56, "up"), (0.55, "up"), (0.5, "flat"), (0.45, "down"), (0.2, "down")]
)
def test_signal_needs_the_probability_past_the_threshold(prob: float, signal: str) -> None:
    assert signal_for(prob, threshold=0.05) == signal


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"as_of": "2026-11-20", "symbols": []}, "at least 1 item"),
        ({"as_of": "2026-11-20", "symbols": ["AAPL", "aapl"]}, "listed twice"),
        ({"as_of": "2026-11-20", "symbols": ["no spaces"]}, "not valid symbols"),
        ({"as_of": "2026-11-21", "symbols": ["AAPL"]}, "weekend"),
        ({"as_of": "2999-01-02", "symbols": ["AAPL"]}, "future"),
        ({"as_of": "yesterday", "symbols": ["AAPL"]}, "valid date"),
        ({"as_of": "2026-11-20", "symbols": ["AAPL"], "extra": 1}, "Extra inputs"),
    ],
)
def test_run_request_rejects_bad_input_with_a_reason(body: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RunCreate.model_validate(body)


def test_run_request_normalises_symbols_to_upper_case() -> None:
    body = RunCreate.model_validate({"as_of": "2026-11-20", "symbols": [" aapl", "BRK.B"]})
    assert body.universe == ["AAPL", "BRK.B"]
