"""GET with a timeout and retries, shared by the HTTP sources.

Timeouts, connection errors, 5xx and 429 are retried with exponential back-off and jitter, waiting
what `Retry-After` (seconds or an HTTP date) or X's `x-rate-limit-reset` (epoch seconds) asks for,
never more than `RetryPolicy.max_wait_seconds`. Other 4xx are not retried: they raise
SourceRejected with the status and the start of the body. When the last attempt fails too, the
call raises SourceUnavailable.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

import httpx
from pydantic import BaseModel, ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from marketsense.ingestion.sources.base import SourceRejected, SourceUnavailable

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

Sleep = Callable[[float], Awaitable[None]]
"""How a source waits between attempts (`asyncio.sleep`; tests pass a recorder)."""

Clock = Callable[[], dt.datetime]
"""The current UTC time, for `Retry-After` dates and rate-limit resets."""

USER_AGENT = "marketsense-ingestion/0.1 (+https://github.com/marketsense)"
"""User-Agent of every request; some APIs refuse the default of HTTP libraries."""

EXCERPT_CHARS = 200
"""How much of an error response's body a SourceRejected message quotes."""


def utc_now() -> dt.datetime:
    """The current time, in UTC."""
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class RetryPolicy:
    """Timeout and retry settings of an HTTP source."""

    max_attempts: int = 4
    """Attempts per request, the first included."""
    backoff_base_seconds: float = 0.5
    """Wait before the second attempt; it doubles each attempt, times a jitter in [0.5, 1]."""
    max_wait_seconds: float = 30.0
    """Longest wait between attempts, whatever the back-off or the server asks for."""
    timeout_seconds: float = 10.0
    """Timeout of each attempt's connect, read, write and pool wait."""


class _Passing(Exception):
    """A failure worth another attempt, with the wait the server asked for, if any."""

    def __init__(self, reason: str, *, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def shown(url: str) -> str:
    """A URL for messages and logs: without its query, which may carry a key."""
    return url.split("?", 1)[0]


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The start of a body on one line, for error messages."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class HttpGetter:
    """Retrying GETs for one source; credentials go in `headers` and are never logged."""

    def __init__(
        self,
        *,
        source: str,
        base_url: str = "",
        headers: Mapping[str, str] | None = None,
        policy: RetryPolicy | None = None,
        client: httpx.AsyncClient | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = utc_now,
    ):
        self.source = source
        self.base_url = base_url.rstrip("/")
        self.policy = policy or RetryPolicy()
        self._headers = {"User-Agent": USER_AGENT, **(headers or {})}
        self._client = client
        self._sleep = sleep
        self._clock = clock

    def __repr__(self) -> str:
        return f"HttpGetter(source={self.source!r}, base_url={self.base_url!r})"

    async def get(
        self, path: str, *, params: Mapping[str, str | int] | None = None
    ) -> httpx.Response:
        """The successful response to GET `base_url + path`, after retries."""
        url = self.base_url + path
        response: httpx.Response | None = None
        async with self._session() as client:
            retrying = AsyncRetrying(
                stop=stop_after_attempt(self.policy.max_attempts),
                wait=self._wait,
                retry=retry_if_exception_type(_Passing),
                sleep=self._sleep,
                before_sleep=self._log_retry,
                reraise=True,
            )
            try:
                async for attempt in retrying:
                    with attempt:
                        response = await self._once(client, url, params)
            except _Passing as exc:
                raise SourceUnavailable(
                    f"{self.source}: {exc.reason}; gave up after {self.policy.max_attempts}"
                    f" attempts at {shown(url)}"
                ) from exc
        assert response is not None  # the loop either set it or raised
        return response

    async def get_json(self, path: str, *, params: Mapping[str, str | int] | None = None) -> object:
        """The decoded JSON body of a successful GET; a body that is not JSON rejects."""
        response = await self.get(path, params=params)
        try:
            data: object = response.json()
        except ValueError as exc:
            raise SourceRejected(
                f"{self.source}: malformed JSON from {path}: {excerpt(response.text)}"
            ) from exc
        return data

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[httpx.AsyncClient]:
        if self._client is not None:
            yield self._client
            return
        async with httpx.AsyncClient() as client:
            yield client

    async def _once(
        self, client: httpx.AsyncClient, url: str, params: Mapping[str, str | int] | None
    ) -> httpx.Response:
        """One attempt: the response if it is a success, else the right exception."""
        try:
            response = await client.get(
                url,
                params=params,
                headers=self._headers,
                timeout=httpx.Timeout(self.policy.timeout_seconds),
                follow_redirects=True,
            )
        except httpx.TimeoutException as exc:
            raise _Passing(f"timed out after {self.policy.timeout_seconds:g} s") from exc
        except httpx.TransportError as exc:
            raise _Passing(f"connection failed ({type(exc).__name__})") from exc
        except httpx.RequestError as exc:
            raise SourceRejected(
                f"{self.source}: request to {shown(url)} failed ({type(exc).__name__})"
            ) from exc
        status = response.status_code
        if status == 429 or status >= 500:
            raise _Passing(f"HTTP {status}", retry_after=self._requested_wait(response))
        if not response.is_success:
            raise SourceRejected(
                f"{self.source}: HTTP {status} from {shown(url)}: {excerpt(response.text)}"
            )
        return response

    def _requested_wait(self, response: httpx.Response) -> float | None:
        """Seconds the server asks us to wait: `Retry-After`, else X's rate-limit reset."""
        retry_after = response.headers.get("retry-after")
        if retry_after:
            try:
                return max(float(retry_after), 0.0)
            except ValueError:
                pass
            try:
                when = email.utils.parsedate_to_datetime(retry_after)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=dt.UTC)
                return max((when - self._clock()).total_seconds(), 0.0)
        reset = response.headers.get("x-rate-limit-reset")
        if reset and response.status_code == 429:
            try:
                return max(float(reset) - self._clock().timestamp(), 0.0)
            except ValueError:
                return None
        return None

    def _wait(self, state: RetryCallState) -> float:
        """Seconds before the next attempt: what the server asked for, else jittered back-off."""
        failure = state.outcome.exception() if state.outcome is not None else None
        if isinstance(failure, _Passing) and failure.retry_after is not None:
            return min(failure.retry_after, self.policy.max_wait_seconds)
        backoff = self.policy.backoff_base_seconds * 2.0 ** (state.attempt_number - 1)
        return min(backoff, self.policy.max_wait_seconds) * random.uniform(0.5, 1.0)

    def _log_retry(self, state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "%s: %s on attempt %d of %d; retrying in %.2f s",
            self.source,
            failure,
            state.attempt_number,
            self.policy.max_attempts,
            delay,
        )


def parse_as(model: type[M], data: object, *, source: str, what: str) -> M:
    """`data` validated as `model`; an unexpected shape rejects with the first problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise SourceRejected(f"{source}: unexpected {what}: {where}: {first['msg']}") from exc
