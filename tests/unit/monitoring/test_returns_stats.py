"""Annualised return figures equal empyrical's, the Sharpe interval and the probabilistic Sharpe
ratio follow their formulas, and undefined figures are None."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import empyrical
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from marketsense.monitoring.returns_stats import (
    probabilistic_sharpe,
    return_stats,
    sharpe_ratio,
)

REAL_BARS = Path(__file__).resolve().parents[2] / "data" / "real" / "bars"


def real_returns(symbol: str) -> np.ndarray:
    """Daily close-to-close returns of a committed real sample (2005 to 2008's crash)."""
    close = pd.read_csv(REAL_BARS / f"{symbol}.csv")["close"].to_numpy(dtype=float)
    return np.asarray(close[1:] / close[:-1] - 1)


def with_crash() -> np.ndarray:
    """A year of calm gains, a 30% fall in a week, then a slow recovery."""
    rng = np.random.default_rng(11)
    calm = rng.normal(0.0006, 0.008, 180)
    crash = np.array([-0.08, -0.11, -0.05, -0.09, 0.03])
    recovery = rng.normal(0.001, 0.02, 70)
    return np.concatenate([calm, crash, recovery])


SERIES = {
    "normal": np.random.default_rng(1).normal(0.0004, 0.01, 252),
    "heavy_tailed": np.random.default_rng(2).standard_t(3, 500) * 0.01,
    "short_losing": np.random.default_rng(3).normal(-0.002, 0.015, 21),
    "with_crash": with_crash(),
    "all_positive": np.random.default_rng(4).uniform(0.0001, 0.004, 63),
    "real_sp500_2005_2008": real_returns("GSPC"),
    "real_goog_2005_2008": real_returns("GOOG"),
}


def same(ours: float | None, theirs: float) -> bool:
    """Equal to 1e-9, or None where empyrical's figure is NaN or infinite."""
    if not math.isfinite(theirs):
        return ours is None
    return ours is not None and math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("name", SERIES)
def test_figures_equal_empyricals_on_the_same_series(name: str) -> None:
    returns = SERIES[name]

    figures = return_stats(returns)

    assert same(figures.sharpe, empyrical.sharpe_ratio(returns))
    assert same(figures.sortino, empyrical.sortino_ratio(returns))
    assert same(figures.annual_return, empyrical.annual_return(returns))
    assert same(figures.annual_volatility, empyrical.annual_volatility(returns))
    assert same(figures.max_drawdown, empyrical.max_drawdown(returns))
    assert same(sharpe_ratio(returns), empyrical.sharpe_ratio(returns))


def test_the_series_cover_losses_gains_and_a_crash() -> None:
    # The equality above means something only if the series differ in the ways that matter.
    crash = return_stats(SERIES["with_crash"]).max_drawdown
    real = return_stats(SERIES["real_sp500_2005_2008"]).max_drawdown
    assert crash is not None
    assert crash < -0.28
    assert return_stats(SERIES["all_positive"]).max_drawdown == 0.0
    assert stats.kurtosis(SERIES["heavy_tailed"]) > 2
    assert real is not None
    assert real < -0.4


def test_a_series_without_losses_has_no_sortino_ratio() -> None:
    assert return_stats(SERIES["all_positive"]).sortino is None
    assert math.isinf(empyrical.sortino_ratio(SERIES["all_positive"]))


@pytest.mark.parametrize("returns", [[], [0.01], [-0.02]])
def test_fewer_than_two_returns_define_no_figure(returns: list[float]) -> None:
    figures = return_stats(np.array(returns))

    assert set(vars(figures).values()) == {None}
    assert probabilistic_sharpe(np.array(returns), 0.0) is None


@pytest.mark.parametrize("returns", [[0.002, 0.002, 0.002], [0.0] * 30])
def test_no_dispersion_has_no_sharpe(returns: list[float]) -> None:
    figures = return_stats(np.array(returns))

    assert figures.sharpe is None
    assert figures.sharpe_low is None
    assert figures.sharpe_high is None
    assert sharpe_ratio(np.array(returns)) is None
    assert probabilistic_sharpe(np.array(returns), 0.0) is None
    assert all(v is None or math.isfinite(v) for v in vars(figures).values())


def test_a_constant_series_has_zero_volatility_not_a_rounding_residue() -> None:
    assert return_stats(np.full(30, 0.0013)).annual_volatility == 0.0


def test_a_loss_beyond_everything_has_no_annual_return_but_a_drawdown() -> None:
    figures = return_stats(np.array([0.05, -1.2, 0.01]))

    assert figures.annual_return is None
    assert figures.max_drawdown is not None
    assert figures.max_drawdown < -1


def test_non_finite_returns_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="finite"):
        return_stats(np.array([0.01, np.nan, 0.02]))


def psr_from_the_formula(returns: np.ndarray, threshold: float) -> float:
    """Bailey and Lopez de Prado (2012), eq. for PSR, with scipy's moments, per period."""
    n = len(returns)
    sr = returns.mean() / returns.std(ddof=1)
    target = threshold / math.sqrt(252)
    skew = stats.skew(returns)
    kurt = stats.kurtosis(returns, fisher=False)
    denominator = math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    return float(stats.norm.cdf((sr - target) * math.sqrt(n - 1) / denominator))


@pytest.mark.parametrize("name", ["normal", "heavy_tailed", "with_crash", "real_goog_2005_2008"])
@pytest.mark.parametrize("threshold", [-1.0, 0.0, 0.5, 2.0])
def test_probabilistic_sharpe_follows_its_formula(name: str, threshold: float) -> None:
    returns = SERIES[name]

    assert probabilistic_sharpe(returns, threshold) == pytest.approx(
        psr_from_the_formula(returns, threshold), rel=1e-9, abs=1e-12
    )


@pytest.mark.parametrize("name", ["normal", "heavy_tailed", "with_crash", "real_sp500_2005_2008"])
def test_probabilistic_sharpe_falls_as_the_threshold_rises_and_is_even_at_the_estimate(
    name: str,
) -> None:
    returns = SERIES[name]
    estimate = sharpe_ratio(returns)
    assert estimate is not None

    thresholds = np.linspace(estimate - 3, estimate + 3, 25)
    psr = [probabilistic_sharpe(returns, t) for t in thresholds]

    assert all(p is not None for p in psr)
    assert all(a > b for a, b in itertools.pairwise(psr))  # type: ignore[operator]
    assert probabilistic_sharpe(returns, estimate) == pytest.approx(0.5, abs=1e-12)


@pytest.mark.parametrize("name", ["normal", "heavy_tailed", "with_crash", "short_losing"])
def test_the_sharpe_interval_is_where_the_probabilistic_sharpe_is_not_extreme(name: str) -> None:
    returns = SERIES[name]
    figures = return_stats(returns)
    assert figures.sharpe_low is not None
    assert figures.sharpe_high is not None
    assert figures.sharpe is not None

    assert figures.sharpe_low < figures.sharpe < figures.sharpe_high
    assert probabilistic_sharpe(returns, figures.sharpe_low) == pytest.approx(0.975, abs=1e-9)
    assert probabilistic_sharpe(returns, figures.sharpe_high) == pytest.approx(0.025, abs=1e-9)


def test_the_interval_widens_with_fat_tails_and_narrows_with_more_days() -> None:
    rng = np.random.default_rng(5)
    # A high Sharpe ratio (0.5 a day), where the kurtosis term of Lo's error weighs.
    normal = rng.normal(0.005, 0.01, 2000)
    # Same mean and standard deviation, but heavy tails: the error is larger.
    fat = rng.standard_t(3, 2000)
    fat = (fat - fat.mean()) / fat.std(ddof=1) * normal.std(ddof=1) + normal.mean()

    def width(r: np.ndarray) -> float:
        figures = return_stats(r)
        assert figures.sharpe_low is not None
        assert figures.sharpe_high is not None
        return figures.sharpe_high - figures.sharpe_low

    assert width(fat) > width(normal)
    assert width(normal) < width(normal[:250])
