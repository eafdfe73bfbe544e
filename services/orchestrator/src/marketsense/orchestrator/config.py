"""Orchestrator settings."""

import re

from pydantic import Field, field_validator

from marketsense.common.alerts import AlertSettings
from marketsense.common.api_models import SYMBOL_PATTERN
from marketsense.common.calendar import DEFAULT_EXCHANGE, checked_exchange
from marketsense.common.features import MIN_BARS
from marketsense.common.settings import CommonSettings


def split_symbols(text: str) -> list[str]:
    """Comma-separated symbols as a list, upper case, without blanks."""
    return [s.strip().upper() for s in text.split(",") if s.strip()]


class OrchestratorSettings(CommonSettings, AlertSettings):
    """Settings of the orchestrator service; it is the service that sends alerts."""

    lookback_days: int = Field(default=MIN_BARS, ge=MIN_BARS, le=5000)
    """Trading days of history each run asks ingestion for: at least the features' warm-up and
    the day itself (`MIN_BARS`), so a run's features equal those of a longer history."""

    failure_threshold: float = Field(default=0.01, ge=0, le=1)
    """Share of failed symbols up to which a run ends PARTIAL rather than FAILED."""

    max_symbols: int = Field(default=10_000, ge=1)
    """Largest universe one run may take."""

    reaper_interval_seconds: float = Field(default=15, gt=0)
    """How often the reaper recovers timed-out tasks, settles finished runs and looks for stuck
    runs."""

    task_timeout_seconds: float = Field(default=300, gt=0)
    """A task RUNNING longer than this is failed as retryable (its worker is presumed lost)."""

    pending_timeout_seconds: float = Field(default=900, gt=0)
    """A task PENDING this long after its input was ready, while no task of its stage changed
    either, has its event re-sent (its event or claim is presumed lost); it counts an attempt."""

    stuck_run_minutes: float = Field(default=30, gt=0)
    """A RUNNING run whose tasks have not changed for this long raises a critical alert."""

    exchange: str = DEFAULT_EXCHANGE
    """Exchange whose sessions runs are for, as an ISO 10383 MIC (XNYS, XNAS, XLON, ...): a run
    for a day it does not trade is refused, and the schedule skips such days."""

    schedule_cron: str | None = None
    """Cron expression (UTC) that starts a run when it fires, e.g. `30 21 * * 1-5`; unset: none."""

    schedule_universe: str = ""
    """Comma-separated symbols the scheduled runs take."""

    @field_validator("schedule_cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        from croniter import croniter

        if value is not None and not value.strip():
            return None
        if value is not None and not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a cron expression (minute hour day month weekday)")
        return value

    @field_validator("exchange")
    @classmethod
    def _known_exchange(cls, value: str) -> str:
        return checked_exchange(value)

    @field_validator("schedule_universe")
    @classmethod
    def _valid_symbols(cls, value: str) -> str:
        bad = [s for s in split_symbols(value) if not re.fullmatch(SYMBOL_PATTERN, s)]
        if bad:
            raise ValueError(
                f"not valid symbols: {bad[:5]} (a letter or digit, then up to 15 letters, "
                "digits, '.' or '-')"
            )
        return value

    def universe(self) -> list[str]:
        """The scheduled runs' symbols, upper case, without blanks."""
        return split_symbols(self.schedule_universe)
