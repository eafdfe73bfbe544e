"""The decay policy: its threshold, its guard against noise, its cooldown and its settings."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from marketsense.common.calendar import DEFAULT_EXCHANGE, exchange_calendar
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.monitoring.config import MonitoringSettings
from marketsense.monitoring.decay import DecayPolicy, decay_threshold, judge, judge_from, replay
from marketsense.monitoring.figures import daily_figures
from marketsense.monitoring.performance_types import DAILY_COLUMNS

DAILY_SHARPE = 0.64
"""The served baseline's book, per day (about 10 annualised)."""
LAST_DAY = dt.date(2026, 12, 2)


def daily_frame(strategy: np.ndarray, benchmark: np.ndarray) -> pd.DataFrame:
    """A daily performance frame on consecutive business days with the given returns."""
    days = pd.bdate_range("2026-01-05", periods=len(strategy)).date
    frame = pd.DataFrame(np.nan, index=pd.Index(days, name="day"), columns=list(DAILY_COLUMNS))
    frame["strategy_return"] = strategy
    frame["benchmark_return"] = benchmark
    return frame


def book(seed: int, days: int, *, flip_at: int | None = None) -> pd.DataFrame:
    """A book with the baseline's daily Sharpe, flipped to its negative from day `flip_at` on."""
    rng = np.random.default_rng(seed)
    mean = np.full(days, DAILY_SHARPE * 0.01)
    if flip_at is not None:
        mean[flip_at:] *= -1
    strategy = mean + 0.01 * rng.standard_normal(days)
    benchmark = 0.0003 + 0.01 * rng.standard_normal(days)
    return daily_frame(strategy, benchmark)


def simulated_book(seed: int, days: int, *, flip_at: int | None = None) -> pd.DataFrame:
    """The daily figures of a perfect-knowledge book on the bench's 50 simulated symbols (fewer
    make a noisier book): each day's score is the true tone of the day before; the signal flips
    after `flip_at` outcome days."""
    sessions = exchange_calendar(DEFAULT_EXCHANGE).sessions(dt.date(2025, 1, 2), LAST_DAY)
    calendar = [d.date() for d in pd.DatetimeIndex(sessions)[-days:]]
    change = calendar[flip_at - 1] if flip_at is not None else None
    market = SimulatedMarket(seed, regime_change=change, regime_signal_factor=-1.0)
    frames = []
    for symbol in [f"SIM{i:02d}" for i in range(50)]:
        bars = market.daily_bars(symbol, as_of=LAST_DAY, days=days + 1)
        tone = market.daily_tone(symbol, as_of=LAST_DAY, days=days + 1).to_numpy()
        close = bars["close"].to_numpy()
        frames.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "as_of": bars["date"].to_numpy()[:-1],
                    "outcome_day": bars["date"].to_numpy()[1:],
                    "prob_up": (1 + tone[:-1]) / 2,
                    "realized_return": close[1:] / close[:-1] - 1,
                }
            )
        )
    resolved = pd.concat(frames, ignore_index=True)
    return daily_figures(resolved, quantile=0.2, cost_bps=5.0)


@pytest.mark.parametrize("seed", [1, 2])
def test_on_the_simulated_market_a_flip_alerts_within_ten_days_and_a_stable_year_never(
    seed: int,
) -> None:
    policy = DecayPolicy()
    stable = simulated_book(seed, policy.min_observations + 252)
    assert replay(stable, policy) == []
    flipped = simulated_book(seed, 126 + 30, flip_at=126)
    findings = replay(flipped, policy)
    assert findings
    assert findings[0].day > flipped.index[125]
    assert list(flipped.index).index(findings[0].day) - 126 < 10


@pytest.mark.parametrize(
    ("benchmark", "expected"),
    [(2.0, 2.2), (0.0, 0.0), (-2.0, -1.8), (-0.5, -0.45)],
)
def test_threshold_asks_to_beat_the_benchmark_by_a_tenth_of_its_size_whatever_its_sign(
    benchmark: float, expected: float
) -> None:
    assert decay_threshold(benchmark, 1.1) == pytest.approx(expected)


def test_threshold_never_falls_below_the_benchmark_for_a_ratio_above_one() -> None:
    benchmarks = np.linspace(-5, 5, 101)
    thresholds = np.array([decay_threshold(b, 1.1) for b in benchmarks])
    assert (thresholds >= benchmarks).all()
    assert (np.diff(thresholds) > 0).all()


def test_a_flipped_book_is_found_within_ten_days_and_a_stable_year_alerts_at_most_once() -> None:
    for seed in range(5):
        assert len(replay(book(seed, 252), DecayPolicy())) <= 1
        flipped = book(seed, 250, flip_at=200)
        after = [f for f in replay(flipped, DecayPolicy()) if f.day >= flipped.index[200]]
        assert after
        assert list(flipped.index).index(after[0].day) - 200 < 10


def test_a_finding_says_what_it_judged() -> None:
    daily = book(1, 250, flip_at=200)
    finding = replay(daily, DecayPolicy())[0]
    stretch = daily.loc[finding.window_start : finding.window_end, "strategy_return"]
    assert finding.observations == len(stretch) >= 5
    assert finding.sharpe == pytest.approx(stretch.mean() / stretch.std() * np.sqrt(252))
    benchmark = daily.loc[: finding.day, "benchmark_return"].iloc[-252:]
    assert finding.benchmark_sharpe == pytest.approx(
        benchmark.mean() / benchmark.std() * np.sqrt(252)
    )
    assert finding.threshold == pytest.approx(decay_threshold(finding.benchmark_sharpe, 1.1))
    assert finding.sharpe < finding.threshold
    assert 0.8 <= finding.confidence < 1
    assert str(finding.window_start) in finding.reason


def test_one_decay_raises_one_alert_within_the_cooldown() -> None:
    daily = book(2, 300, flip_at=200)
    findings = replay(daily, DecayPolicy(cooldown=252))
    assert len(findings) == 1
    again = judge(daily, DecayPolicy(cooldown=252), last_alert_day=findings[0].day)
    assert again is None


def test_a_decay_that_lasts_past_the_cooldown_alerts_again() -> None:
    daily = book(2, 300, flip_at=200)
    findings = replay(daily, DecayPolicy(cooldown=21))
    days = list(daily.index)
    gaps = np.diff([days.index(f.day) for f in findings])
    assert len(findings) >= 2
    assert (gaps > 21).all()


def test_the_confidence_guard_silences_noise_the_sum_alone_would_alert_on() -> None:
    healthy = book(4, 504)
    loose = replay(healthy, DecayPolicy(limit=1.0, confidence=0.51))
    guarded = replay(healthy, DecayPolicy(limit=1.0, confidence=0.95))
    assert len(guarded) < len(loose)
    assert all(f.confidence >= 0.95 for f in guarded)


def test_one_freak_day_alone_does_not_alert() -> None:
    daily = book(6, 260)
    daily.loc[daily.index[-1], "strategy_return"] = -0.2  # twenty standard deviations
    assert judge(daily, DecayPolicy(), last_alert_day=None) is None
    unbounded = DecayPolicy(winsor=50.0, confidence=0.6)
    assert judge(daily, unbounded, last_alert_day=None) is not None


def test_a_negative_benchmark_still_needs_beating() -> None:
    # A falling market (Sharpe about -16) and a book losing a little faster (about -17): above
    # 1.1 times the benchmark's Sharpe (-17.6), so the bare product rule would call it healthy,
    # but it does not beat the benchmark by a tenth of its size (threshold about -14.4).
    rng = np.random.default_rng(3)
    benchmark = 0.01 * (-1.0 + rng.standard_normal(300))
    daily = daily_frame(0.01 * (-1.08 + rng.standard_normal(300)), benchmark)
    findings = replay(daily, DecayPolicy(limit=3.0, confidence=0.6))
    assert findings
    for finding in findings:
        assert finding.benchmark_sharpe < finding.threshold < 0
        assert finding.threshold == pytest.approx(0.9 * finding.benchmark_sharpe)
        assert finding.sharpe < finding.threshold


def test_too_few_days_are_not_judged() -> None:
    daily = book(1, 30, flip_at=0)
    policy = DecayPolicy(min_observations=25, volatility_days=25)
    assert judge(daily.iloc[:24], policy, last_alert_day=None) is None
    assert judge(daily, policy, last_alert_day=None) is not None


def test_policy_comes_from_the_settings() -> None:
    settings = MonitoringSettings(
        decay_ratio=1.2,
        decay_window_days=15,
        decay_min_observations=10,
        decay_reference_days=126,
        decay_volatility_days=42,
        decay_limit=3.0,
        decay_confidence=0.9,
        decay_cooldown_days=5,
        decay_winsor=2.5,
    )
    assert DecayPolicy.from_settings(settings) == DecayPolicy(
        ratio=1.2,
        window=15,
        min_observations=10,
        reference_days=126,
        volatility_days=42,
        limit=3.0,
        confidence=0.9,
        cooldown=5,
        winsor=2.5,
    )


def test_a_reference_shorter_than_the_minimum_observations_is_refused() -> None:
    with pytest.raises(ValueError, match="decay_reference_days"):
        MonitoringSettings(decay_reference_days=10, decay_min_observations=21)
    with pytest.raises(ValueError, match="decay_volatility_days"):
        MonitoringSettings(decay_volatility_days=10, decay_min_observations=21)
    with pytest.raises(ValueError, match="reference"):
        DecayPolicy(reference_days=10, min_observations=21)


def test_a_flat_strategy_is_not_judged() -> None:
    daily = daily_frame(np.zeros(60), np.full(60, 0.001))
    assert judge(daily, DecayPolicy(), last_alert_day=dt.date(2020, 1, 1)) is None


def test_a_backfills_days_are_judged_as_daily_runs_would_have_judged_them() -> None:
    daily = book(2, 300, flip_at=200)
    policy = DecayPolicy(cooldown=21)
    day_by_day = replay(daily, policy)
    first = daily.index[150]

    judged = judge_from(daily, policy, first=first, last_alert_day=None)
    again = judge_from(daily, policy, first=first, last_alert_day=judged[-1].day)

    assert len(judged) >= 2
    assert judged == [f for f in day_by_day if f.day >= first]
    assert again == []
