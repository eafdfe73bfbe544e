"""The model registry's REST API as services call it: pushes, aliases, archives, evaluation sets.

Services that change the registry (the retraining worker pushing a challenger, monitoring
promoting or retiring one) go through its API, never its tables: the registry measures, gates,
audits and announces every change itself. Deployed, they call `MARKETSENSE_REGISTRY_URL` with
the key in `MARKETSENSE_REGISTRY_API_KEY`; on the embedded default every service shares one app,
and `InProcessTransport` carries the calls to it without a socket.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from marketsense.common.api_client import ApiError, error_detail
from marketsense.common.auth import KEY_HEADER

IN_PROCESS_URL = "http://registry.in-process"
"""Base URL of calls carried by `InProcessTransport`."""


class RegistryAccessSettings(BaseSettings):
    """Where a service finds the registry's API, and the key it calls it with."""

    model_config = SettingsConfigDict(env_prefix="MARKETSENSE_", extra="ignore")

    registry_url: str | None = None
    """Base URL of the registry's API; unset means the registry in this process (embedded)."""

    registry_api_key: SecretStr | None = None
    """API key the service calls the registry with (role approver to promote, publisher to
    push); unset in-process, where the app's own key is used."""


class InProcessTransport(httpx.AsyncBaseTransport):
    """Calls to an ASGI app in this process that is built after the components calling it.

    The embedded pipeline sets `app` once its app exists and `api_key` once its start-up has
    made a key; a call before then fails as an unreachable server would.
    """

    def __init__(self) -> None:
        self.app: Any = None
        self.api_key: str | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Hand the request to the app, with the in-process key when it carries none."""
        if self.app is None:
            raise httpx.ConnectError("the in-process registry is not started yet", request=request)
        if self.api_key and KEY_HEADER not in request.headers:
            request.headers[KEY_HEADER] = self.api_key
        return await httpx.ASGITransport(app=self.app).handle_async_request(request)


class RegistryCalls:
    """An async client of the registry's API; every refusal raises ApiError with its reason."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 300.0,
    ):
        headers = {KEY_HEADER: api_key} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    @classmethod
    def from_settings(
        cls, settings: RegistryAccessSettings, *, in_process: InProcessTransport | None = None
    ) -> RegistryCalls:
        """The configured registry, or the in-process one when no URL is set."""
        key = settings.registry_api_key.get_secret_value() if settings.registry_api_key else None
        if settings.registry_url:
            return cls(settings.registry_url, api_key=key)
        if in_process is None:
            raise ValueError(
                "MARKETSENSE_REGISTRY_URL is not set and no registry runs in this process: set it "
                "to the registry's base URL (and MARKETSENSE_REGISTRY_API_KEY to a key)"
            )
        return cls(IN_PROCESS_URL, api_key=key, transport=in_process)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _json(self, method: str, url: str, **kwargs: Any) -> Any:
        """One call's JSON answer (None for 204); ApiError on a refusal or no answer."""
        try:
            response = await self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise ApiError(
                None, f"cannot reach the registry at {self.base_url}: {exc or type(exc).__name__}"
            ) from exc
        if response.status_code >= 400:
            raise ApiError(response.status_code, error_detail(response))
        return None if response.status_code == 204 or not response.content else response.json()

    async def model(self, name: str) -> dict[str, Any] | None:
        """A registered model, or None when the name is not registered."""
        try:
            found: dict[str, Any] = await self._json("GET", f"/v1/models/{name}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return found

    async def versions(self, name: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """A model's newest `limit` versions, newest first."""
        page = await self._json("GET", f"/v1/models/{name}/versions", params={"limit": limit})
        items: list[dict[str, Any]] = page["items"] if isinstance(page, dict) else page
        return items

    async def alias(self, name: str, alias: str) -> dict[str, Any] | None:
        """Where an alias points now, or None when the model has no such alias."""
        try:
            found: dict[str, Any] = await self._json("GET", f"/v1/models/{name}/aliases/{alias}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return found

    async def push_version(self, name: str, *, manifest: bytes, bundle: bytes) -> dict[str, Any]:
        """Push a bundle (gzip tar of the model folder) with its manifest; the new version."""
        files = {
            "manifest": ("manifest.json", manifest),
            "bundle": ("bundle.tar.gz", bundle),
        }
        pushed: dict[str, Any] = await self._json(
            "POST", f"/v1/models/{name}/versions", files=files
        )
        return pushed

    async def move_alias(
        self, name: str, alias: str, *, version: int, reason: str
    ) -> dict[str, Any]:
        """Point an alias at a version (production through the registry's gate)."""
        moved: dict[str, Any] = await self._json(
            "PUT",
            f"/v1/models/{name}/aliases/{alias}",
            json={"version": version, "reason": reason},
        )
        return moved

    async def delete_alias(self, name: str, alias: str, *, reason: str) -> None:
        """Remove an alias other than production."""
        await self._json("DELETE", f"/v1/models/{name}/aliases/{alias}", json={"reason": reason})

    async def archive(self, name: str, version: int, *, reason: str) -> dict[str, Any]:
        """Archive a version: never promotable again, still readable."""
        archived: dict[str, Any] = await self._json(
            "POST", f"/v1/models/{name}/versions/{version}/archive", json={"reason": reason}
        )
        return archived

    async def predictor_set_from_runs(self, *, start: dt.date, end: dt.date) -> dict[str, Any]:
        """Make the feature rows the pipeline stored in `start..end`, labelled with what the
        market did, the active predictor evaluation set; the set's description."""
        added: dict[str, Any] = await self._json(
            "POST",
            "/v1/evaluation-sets/predictor/from-runs",
            json={"start": start.isoformat(), "end": end.isoformat()},
        )
        return added
