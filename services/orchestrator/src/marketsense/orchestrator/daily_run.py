"""Start today's run through the orchestrator's API: `python -m marketsense.orchestrator.daily_run`.

The chart's CronJob runs this on the daily schedule. Going through `POST /v1/runs` keeps one
door into the orchestrator: the run is audited under the key's name, and a second start for a
day that already has a live run is refused (409), which counts as done here, so the Job may be
retried safely.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
from collections.abc import Callable

import httpx
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from tenacity import (
    RetryError,
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from marketsense.common.auth import KEY_HEADER
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

    def symbols(self) -> list[str]:
        """The universe, upper case, without blanks."""
        return split_symbols(self.schedule_universe)


class _Passing(Exception):
    """The orchestrator could not be reached or failed on its side: worth another attempt."""


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


async def start_daily_run(
    settings: DailyRunSettings,
    *,
    today: Callable[[], dt.date] = _today,
    transport: httpx.AsyncBaseTransport | None = None,
    max_wait_seconds: float = 30.0,
) -> tuple[int, str]:
    """Start the run for today; the exit code and the one line that says what happened."""
    as_of = today()
    if as_of.weekday() >= 5:
        return 0, f"{as_of} is a weekend day: no run"

    @retry(
        retry=retry_if_exception(lambda exc: isinstance(exc, _Passing)),
        stop=stop_after_attempt(settings.daily_run_attempts),
        wait=wait_exponential_jitter(initial=1, max=max_wait_seconds),
        reraise=False,
    )
    async def post(client: httpx.AsyncClient) -> httpx.Response:
        try:
            response = await client.post(
                "/v1/runs", json={"as_of": as_of.isoformat(), "universe": settings.symbols()}
            )
        except httpx.TransportError as exc:
            raise _Passing(f"cannot reach {settings.orchestrator_url}: {exc}") from exc
        if response.status_code >= 500:
            raise _Passing(f"orchestrator answered {response.status_code}: {response.text[:200]}")
        return response

    headers = {KEY_HEADER: settings.api_key.get_secret_value()}
    async with httpx.AsyncClient(
        base_url=settings.orchestrator_url, headers=headers, timeout=30, transport=transport
    ) as client:
        try:
            response = await post(client)
        except RetryError as exc:
            cause = exc.last_attempt.exception()
            return (
                1,
                f"error: no run for {as_of} after {settings.daily_run_attempts} attempts: {cause}",
            )
    detail = _detail(response)
    if response.status_code == 201:
        body = response.json()
        return 0, f"started run {body['id']} for {as_of} over {len(settings.symbols())} symbols"
    if response.status_code == 409:
        return 0, f"no new run for {as_of}: {detail}"
    return (
        1,
        f"error: the orchestrator refused the run for {as_of} ({response.status_code}): {detail}",
    )


def _detail(response: httpx.Response) -> str:
    """The error message of an API answer, or its start when it is not the documented shape."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("detail", body)) if isinstance(body, dict) else str(body)[:200]


def main() -> int:
    """Read the settings from the environment and start today's run."""
    try:
        settings = DailyRunSettings()
    except ValidationError as exc:
        missing = ", ".join(f"MARKETSENSE_{str(e['loc'][0]).upper()}" for e in exc.errors())
        print(f"error: set {missing} (see the chart's dailyRun values)", file=sys.stderr)
        return 2
    code, line = asyncio.run(start_daily_run(settings))
    print(line, file=sys.stderr if code else sys.stdout)
    return code


if __name__ == "__main__":
    sys.exit(main())
