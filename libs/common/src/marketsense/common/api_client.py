"""What every typed client of a marketsense API shares: the key header, typed answers, and errors
that carry the server's own explanation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, ClassVar, Self, TypeVar

import httpx
from pydantic import BaseModel

from marketsense.common.auth import KEY_HEADER

M = TypeVar("M", bound=BaseModel)


class ApiError(Exception):
    """An API refused a request (`status` 4xx/5xx) or could not be reached (`status` None)."""

    def __init__(self, status: int | None, detail: str):
        super().__init__(detail if status is None else f"{status}: {detail}")
        self.status = status
        """HTTP status of the answer; None when there was no answer."""
        self.detail = detail
        """The server's explanation (its `detail`), or what failed on the way."""


def error_detail(response: httpx.Response) -> str:
    """The server's `detail`, flattened to one line; the body or reason when there is none."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, str) and detail:
        return detail
    if isinstance(detail, list):  # FastAPI's request validation errors
        return "; ".join(_field_error(item) for item in detail)
    if detail is not None:
        return json.dumps(detail)
    return response.text.strip()[:500] or response.reason_phrase


def _field_error(item: object) -> str:
    if not isinstance(item, dict):
        return str(item)
    where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
    return f"{where}: {item.get('msg', '')}" if where else str(item.get("msg", item))


class ApiClient:
    """A synchronous client of one service's API; a context manager closing its connections."""

    service: ClassVar[str] = "the service"
    """How error messages name the server, such as "the registry"."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        timeout: float = 30.0,
        *,
        transport: httpx.BaseTransport | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        headers = {KEY_HEADER: api_key} if api_key else {}
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    @contextmanager
    def _stream(self, method: str, url: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A streamed response with a success status; anything else raises ApiError."""
        try:
            with self._http.stream(method, url, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ApiError(response.status_code, error_detail(response))
                yield response
        except httpx.TimeoutException as exc:
            raise ApiError(
                None, f"{self.service} at {self.base_url} did not answer in time ({exc!r})"
            ) from exc
        except httpx.TransportError as exc:
            raise ApiError(
                None,
                f"cannot reach {self.service} at {self.base_url}: {exc or type(exc).__name__}",
            ) from exc

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        with self._stream(method, url, **kwargs) as response:
            response.read()
        return response

    def _call(self, model: type[M], method: str, url: str, **kwargs: Any) -> M:
        """One request whose answer is one `model`."""
        return model.model_validate_json(self._send(method, url, **kwargs).content)

    def _call_list(self, model: type[M], method: str, url: str, **kwargs: Any) -> list[M]:
        """One request whose answer is a list of `model`."""
        items = self._send(method, url, **kwargs).json()
        return [model.model_validate(item) for item in items]
