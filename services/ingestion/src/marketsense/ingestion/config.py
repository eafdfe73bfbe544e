"""Ingestion settings."""

from pydantic import Field

from marketsense.common.settings import CommonSettings


class IngestionSettings(CommonSettings):
    """Settings of the ingestion service."""

    market_seed: int = 7
    """Seed of the simulated market; one seed always gives the same prices."""

    lookback_days: int = Field(default=60, ge=21)
    """Trading days of bars each run fetches per symbol."""
