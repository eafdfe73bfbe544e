"""Monitoring settings: the performance windows, the strategy it judges by, the decay policy,
the drift check, and champion against challenger."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from marketsense.common.alerts import AlertSettings
from marketsense.common.registry_calls import RegistryAccessSettings
from marketsense.common.settings import CommonSettings


class MonitoringSettings(CommonSettings, AlertSettings, RegistryAccessSettings):
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
    """Longest recent stretch, in outcome days, the decay policy sums the shortfall over."""

    decay_min_observations: int = Field(default=63, ge=5, le=252)
    """Fewest outcome days before the policy judges at all (the benchmark's Sharpe over fewer
    is too noisy to set a threshold by)."""

    decay_reference_days: int = Field(default=252, ge=5, le=2520)
    """Outcome days the benchmark's Sharpe, which sets the threshold, is measured over."""

    decay_volatility_days: int = Field(default=63, ge=5, le=2520)
    """Outcome days the strategy's volatility, which standardises its returns, is measured over."""

    decay_limit: float = Field(default=4.0, gt=0, le=100)
    """Shortfall below the threshold, in days' standard deviations, that raises the alarm."""

    decay_confidence: float = Field(default=0.9, gt=0.5, lt=1)
    """How sure the policy must be that the true Sharpe is below the threshold before alerting."""

    decay_cooldown_days: int = Field(default=21, ge=0, le=1000)
    """Outcome days after an alert before the same model version can raise another."""

    decay_winsor: float = Field(default=3.0, gt=0, le=100)
    """A day's standardised strategy return counts at most this many standard deviations."""

    drift_threshold: float = Field(default=0.2, gt=0, le=1)
    """Kolmogorov-Smirnov statistic above which a feature counts as drifted."""

    drift_p_value: float = Field(default=0.01, gt=0, lt=1)
    """And the p-value below which the difference is not chance."""

    drift_alert_runs: int = Field(default=3, ge=1, le=100)
    """Latest runs in a row a feature must have drifted in before monitoring alerts on it."""

    drift_quiet_features: list[str] = Field(
        default=["ret_1d", "ret_5d", "ret_20d", "rsi_14", "macd", "macd_signal"], max_length=64
    )
    """Features measured and shown but never alerted on: a single day's cross-section of these
    moves with that day's market move (docs/monitoring.md, "Drift")."""

    gauge_refresh_seconds: float = Field(default=30, ge=1, le=3600)
    """How often the Prometheus gauges are read again from the database."""

    gauge_version_days: int = Field(default=30, ge=1, le=3660)
    """Calendar days, back from the model's newest figures, a version keeps its gauge series;
    older versions drop out, so label sets stay few."""

    challenge_days: int = Field(default=10, ge=2, le=252)
    """Outcome days on which both the production and the challenger version must have resolved
    predictions before their Sharpe ratios over those days decide the challenge."""

    challenge_margin: float = Field(default=0.5, ge=0, le=20)
    """Annualised Sharpe by which the challenger must beat production to be promoted."""

    promotion_mode: Literal["auto", "approval"] = "auto"
    """`auto`: a winning challenger is promoted through the registry's gate at once;
    `approval`: it waits for an approver's `marketsense challenges approve`."""

    @field_validator("performance_windows")
    @classmethod
    def _windows_in_range(cls, windows: list[int]) -> list[int]:
        """Each window from 2 to 2,520 trading days (ten years), listed once."""
        if any(not 2 <= w <= 2520 for w in windows) or len(set(windows)) != len(windows):
            raise ValueError("each window is 2 to 2520 trading days, listed once")
        return sorted(windows)

    @model_validator(mode="after")
    def _decay_reference_holds_the_minimum(self) -> MonitoringSettings:
        """The decay policy's reference window holds at least its minimum observations."""
        if min(self.decay_reference_days, self.decay_volatility_days) < self.decay_min_observations:
            raise ValueError(
                "decay_reference_days and decay_volatility_days must be at least"
                " decay_min_observations"
            )
        return self
