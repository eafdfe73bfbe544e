"""Monitoring settings: the performance windows, the strategy it judges by, the decay policy and
the drift check."""

from __future__ import annotations

from pydantic import Field, field_validator

from marketsense.common.alerts import AlertSettings
from marketsense.common.settings import CommonSettings


class MonitoringSettings(CommonSettings, AlertSettings):
    """Settings of the monitoring service."""

    monitored_model: str = "baseline-predictor"
    """Registered predictor whose versions' predictions are judged and retrained on decay."""

    performance_windows: list[int] = Field(default=[21, 63, 252], min_length=1, max_length=8)
    """Windows, in trading days, every performance figure is computed over."""

    strategy_quantile: float = Field(default=0.2, gt=0, le=0.5)
    """Share of the universe the long-short book buys (top scores) and sells (bottom scores)."""

    strategy_cost_bps: float = Field(default=5.0, ge=0, le=1000)
    """Cost of trading, in basis points per unit of turnover, taken from the book's return."""

    benchmark_symbol: str | None = None
    """Symbol whose bars are the benchmark; unset: equal-weight buy-and-hold of the universe."""

    decay_ratio: float = Field(default=1.1, gt=0, le=10)
    """The strategy's Sharpe must stay above this times the benchmark's (see docs/monitoring.md
    for a negative benchmark)."""

    decay_window_days: int = Field(default=21, ge=5, le=252)
    """Trading days the decay policy looks back over."""

    decay_min_observations: int = Field(default=10, ge=5, le=252)
    """Fewest outcome days in the window before the policy judges at all."""

    decay_confidence: float = Field(default=0.9, gt=0.5, lt=1)
    """How sure the policy must be that the true Sharpe is below the threshold before alerting."""

    decay_cooldown_days: int = Field(default=21, ge=0, le=1000)
    """Trading days after an alert before the same model version can raise another."""

    drift_threshold: float = Field(default=0.2, gt=0, le=1)
    """Kolmogorov-Smirnov statistic above which a feature counts as drifted."""

    drift_p_value: float = Field(default=0.01, gt=0, lt=1)
    """And the p-value below which the difference is not chance."""

    @field_validator("performance_windows")
    @classmethod
    def _windows_in_range(cls, windows: list[int]) -> list[int]:
        """Each window from 2 to 2,520 trading days (ten years), listed once."""
        if any(not 2 <= w <= 2520 for w in windows) or len(set(windows)) != len(windows):
            raise ValueError("each window is 2 to 2520 trading days, listed once")
        return sorted(windows)
