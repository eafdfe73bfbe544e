"""Start today's run through the orchestrator's API: `python -m marketsense.orchestrator.daily_run`.

The chart's CronJob runs this on the daily schedule. The day is the exchange's date when it runs
(21:30 UTC is 16:30 in New York: the session just closed); a day the exchange does not trade
starts nothing and exits 0. Going through `POST /v1/runs` keeps one door into the orchestrator:
the run is audited under the key's name, and a second start for a day that already has a live run
is refused (409), which counts as done here, so the Job may be retried safely.
"""

from __future__ import annotations

import sys

import httpx
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from marketsense.common.api_client import ApiError
from marketsense.common.calendar import DEFAULT_EXCHANGE, checked_exchange, exchange_calendar
from marketsense.common.clock import Clock, utc_now
from marketsense.orchestrator.client import OrchestratorClient
from marketsense.orchestrator.config import split_symbols


class DailyRunSettings(BaseSettings):
    """What the daily run needs: where the orchestrator is, a publisher key, the symbols."""

    model_config = SettingsConfigDict(env_prefix="MARKETSENSE_", extra="ignore")

    orchestrator_url: str = "http://127.0.0.1:8000"
    """Base URL of the orchestrator's API."""

    api_key: SecretStr
    """An API key with the publisher role (or above)."""

    schedule_universe: str = Field(min_length=1)
    """Comma-separated symbols of the daily run."""

    daily_run_attempts: int = Field(default=5, ge=1)
    """Attempts while the orchestrator is unreachable or answers 5xx."""

    exchange: str = DEFAULT_EXCHANGE
    """Exchange whose sessions get a run (the orchestrator's `exchange`)."""

    @field_validator("exchange")
    @classmethod
    def _known_exchange(cls, value: str) -> str:
        return checked_exchange(value)

    def symbols(self) -> list[str]:
        """The universe, upper case, without blanks."""
        return split_symbols(self.schedule_universe)


def _passing(error: BaseException) -> bool:
    """Worth another attempt: no answer at all, or a failure on the orchestrator's side."""
    return isinstance(error, ApiError) and (error.status is None or error.status >= 500)


def start_daily_run(
    settings: DailyRunSettings,
    *,
    now: Clock = utc_now,
    transport: httpx.BaseTransport | None = None,
    max_wait_seconds: float = 30.0,
) -> tuple[int, str]:
    """Start the run for the exchange's day; the exit code and the one line that says what
    happened."""
    calendar = exchange_calendar(settings.exchange)
    as_of = calendar.local_day(now())
    if not calendar.is_session(as_of):
        return 0, f"no run: {calendar.not_a_session(as_of)}"
    symbols = settings.symbols()
    retrying = Retrying(
        retry=retry_if_exception(_passing),
        stop=stop_after_attempt(settings.daily_run_attempts),
        wait=wait_exponential_jitter(initial=1, max=max_wait_seconds),
        reraise=True,
    )
    with OrchestratorClient(
        settings.orchestrator_url, settings.api_key.get_secret_value(), transport=transport
    ) as client:
        try:
            run = retrying(client.start_run, as_of, symbols)
        except ApiError as exc:
            if exc.status == 409:
                return 0, f"no new run for {as_of}: {exc.detail}"
            if _passing(exc):
                return (
                    1,
                    f"error: no run for {as_of} after {settings.daily_run_attempts} attempts: "
                    f"{exc.detail}",
                )
            return (
                1,
                f"error: the orchestrator refused the run for {as_of} ({exc.status}): {exc.detail}",
            )
    return 0, f"started run {run.id} for {as_of} over {len(symbols)} symbols"


def main() -> int:
    """Read the settings from the environment and start today's run."""
    try:
        settings = DailyRunSettings()
    except ValidationError as exc:
        errors = exc.errors()
        missing = ", ".join(
            f"MARKETSENSE_{str(e['loc'][0]).upper()}" for e in errors if e["type"] == "missing"
        )
        wrong = "; ".join(
            f"MARKETSENSE_{str(e['loc'][0]).upper()}: {e['msg']}"
            for e in errors
            if e["type"] != "missing"
        )
        print(
            f"error: set {missing} (see the chart's dailyRun values)"
            if missing
            else f"error: {wrong}",
            file=sys.stderr,
        )
        return 2
    code, line = start_daily_run(settings)
    print(line, file=sys.stderr if code else sys.stdout)
    return code


if __name__ == "__main__":
    sys.exit(main())
