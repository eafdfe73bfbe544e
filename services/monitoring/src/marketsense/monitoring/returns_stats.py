"""Annualised figures of a daily return series: Sharpe, Sortino, return, volatility, drawdown,
the Sharpe ratio's confidence interval and the probabilistic Sharpe ratio.

The definitions are empyrical's (risk-free rate 0, 252 periods a year), so the figures equal
`empyrical-reloaded`'s on the same series; where a figure is undefined (too few returns, no
dispersion, no losses) it is None, never NaN or infinity.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

from marketsense.monitoring.performance_types import ReturnStats

PERIODS_PER_YEAR = 252
"""Trading days a year, the annualisation factor of every figure."""

CONFIDENCE = 0.95
"""Coverage of the Sharpe ratio's confidence interval."""


def _finite(value: float) -> float | None:
    """The value, or None when it is NaN or infinite."""
    return float(value) if math.isfinite(value) else None


def _checked(returns: np.ndarray) -> np.ndarray:
    """The returns as a one-dimensional float array; a clear error when one is not finite."""
    values = np.asarray(returns, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"returns must be one-dimensional, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("returns must be finite: drop or fill NaN and infinite values first")
    return values


def _period_sharpe(values: np.ndarray) -> float | None:
    """Mean over standard deviation (ddof=1) of one period's returns; None without dispersion."""
    # Identical values have no dispersion, but their floating-point mean can differ from them in
    # the last bit and leave a tiny, meaningless standard deviation.
    if len(values) < 2 or values.max() == values.min():
        return None
    return _finite(values.mean() / values.std(ddof=1))


def _sharpe_variance(values: np.ndarray, sharpe: float) -> float | None:
    """Asymptotic variance of the per-period Sharpe estimate times (n - 1): Lo (2002) under
    non-normal returns as Mertens (2002) gave it, 1 - skew*SR + (kurtosis - 1)/4 * SR^2."""
    centred = values - values.mean()
    m2 = float(np.mean(centred**2))
    skew = float(np.mean(centred**3)) / m2**1.5
    kurtosis = float(np.mean(centred**4)) / m2**2
    variance = 1 - skew * sharpe + (kurtosis - 1) / 4 * sharpe**2
    # Never negative in exact arithmetic (kurtosis >= 1 + skew^2); zero only for a two-point law.
    return variance if variance > 0 else None


def sharpe_ratio(returns: np.ndarray) -> float | None:
    """Annualised Sharpe ratio (mean over sample standard deviation times sqrt(252))."""
    sharpe = _period_sharpe(_checked(returns))
    return None if sharpe is None else _finite(sharpe * math.sqrt(PERIODS_PER_YEAR))


def probabilistic_sharpe(returns: np.ndarray, threshold: float) -> float | None:
    """P(true annualised Sharpe > `threshold`): Bailey and Lopez de Prado's probabilistic
    Sharpe ratio, Phi((SR - SR*) sqrt(n - 1) / sqrt(1 - skew SR + (kurtosis - 1)/4 SR^2)),
    computed per period (the threshold is de-annualised)."""
    values = _checked(returns)
    sharpe = _period_sharpe(values)
    if sharpe is None:
        return None
    variance = _sharpe_variance(values, sharpe)
    if variance is None:
        return None
    per_period = threshold / math.sqrt(PERIODS_PER_YEAR)
    z = (sharpe - per_period) * math.sqrt((len(values) - 1) / variance)
    return _finite(float(norm.cdf(z)))


def _sharpe_interval(values: np.ndarray) -> tuple[float | None, float | None]:
    """The annualised Sharpe ratio's confidence interval, from the same standard error as the
    probabilistic Sharpe ratio (so the interval holds 0 exactly when PSR(0) is not extreme)."""
    sharpe = _period_sharpe(values)
    if sharpe is None:
        return None, None
    variance = _sharpe_variance(values, sharpe)
    if variance is None:
        return None, None
    z = float(norm.ppf(0.5 + CONFIDENCE / 2))
    half = z * math.sqrt(variance / (len(values) - 1))
    scale = math.sqrt(PERIODS_PER_YEAR)
    return _finite((sharpe - half) * scale), _finite((sharpe + half) * scale)


def _sortino(values: np.ndarray) -> float | None:
    """Annualised mean over annualised downside deviation (root mean square of the losses)."""
    if len(values) < 2:
        return None
    downside = math.sqrt(float(np.mean(np.minimum(values, 0.0) ** 2)))
    if downside == 0:
        return None
    return _finite(values.mean() * PERIODS_PER_YEAR / (downside * math.sqrt(PERIODS_PER_YEAR)))


def _annual_return(values: np.ndarray) -> float | None:
    """Compound annual growth rate of the compounded series; None of a single day, whose rate
    to the power 252 says nothing."""
    if len(values) < 2:
        return None
    ending = float(np.prod(values + 1))
    if ending < 0:  # a loss beyond everything has no real annual rate
        return None
    with np.errstate(over="ignore"):
        return _finite(ending ** (1 / (len(values) / PERIODS_PER_YEAR)) - 1)


def _annual_volatility(values: np.ndarray) -> float | None:
    """Sample standard deviation (ddof=1) times sqrt(252)."""
    if len(values) < 2:
        return None
    if values.max() == values.min():  # not the last-bit residue of a floating-point mean
        return 0.0
    return _finite(values.std(ddof=1) * math.sqrt(PERIODS_PER_YEAR))


def _max_drawdown(values: np.ndarray) -> float | None:
    """Deepest fall of the compounded curve from its running peak, as a fraction (0 or below);
    the curve starts at 1 before the first return, so a first-day loss is a drawdown."""
    if len(values) < 2:
        return None
    curve = np.concatenate([[1.0], np.cumprod(values + 1)])
    peak = np.fmax.accumulate(curve)
    return _finite(float(np.min((curve - peak) / peak)))


def return_stats(returns: np.ndarray) -> ReturnStats:
    """Every annualised figure of a daily return series; None where the series defines none
    (each of them with fewer than two returns)."""
    values = _checked(returns)
    low, high = _sharpe_interval(values)
    return ReturnStats(
        sharpe=sharpe_ratio(values),
        sortino=_sortino(values),
        annual_return=_annual_return(values),
        annual_volatility=_annual_volatility(values),
        max_drawdown=_max_drawdown(values),
        sharpe_low=low,
        sharpe_high=high,
    )
