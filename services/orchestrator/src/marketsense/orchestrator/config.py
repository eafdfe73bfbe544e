"""Orchestrator settings."""

from pydantic import Field

from marketsense.common.features import MIN_BARS
from marketsense.common.settings import CommonSettings


class OrchestratorSettings(CommonSettings):
    """Settings of the orchestrator service."""

    lookback_days: int = Field(default=60, ge=MIN_BARS, le=2000)
    """Trading days of history each run asks ingestion for (features need MIN_BARS)."""

    failure_threshold: float = Field(default=0.01, ge=0, le=1)
    """Share of failed symbols up to which a run ends PARTIAL rather than FAILED."""

    max_symbols: int = Field(default=10_000, ge=1)
    """Largest universe one run may take."""
