"""A typed, synchronous client of the registry API, for people's tools and scripts."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from marketsense.common.api_client import ApiClient, ApiError
from marketsense.models.bundles import pack_bundle
from marketsense.models.files import MANIFEST_FILE
from marketsense.models.integrity import list_files
from marketsense.models.kinds import ModelKind
from marketsense.models.versions import PRODUCTION
from marketsense.registry.schemas import (
    AliasAtRead,
    AliasChangeRead,
    ModelRead,
    VersionRead,
)
from marketsense.registry.schemas_lifecycle import (
    AliasChangePageRead,
    AuditPageRead,
    CompareRead,
    ModelPageRead,
    VersionPageRead,
)

ProgressCallback = Callable[[int, int], None]
"""Called with (bytes done, bytes in total) as an upload or download goes."""

# Pushes are answered only after the registry has loaded and run the model; downloads can be large.
SLOW_READ_SECONDS = 600.0
_CHUNK = 64 * 1024
_PAGE = 500
_Page = TypeVar("_Page", ModelPageRead, VersionPageRead, AliasChangePageRead)


class ChecksumMismatchError(ApiError):
    """A file's bytes do not match the sha256 or size recorded at the other end: a downloaded
    file against the registry's record, or a pushed file against what the registry stored."""

    def __init__(self, detail: str):
        super().__init__(None, detail)


@dataclass(frozen=True)
class Pushed:
    """What a push gave: the version, and whether the push created it."""

    version: VersionRead
    """The version holding the pushed files."""
    created: bool
    """False when the registry already had a version with the same content (HTTP 200)."""


class RegistryClient(ApiClient):
    """Every route of the registry API, returning its pydantic models; a context manager."""

    service = "the registry"

    # Models

    def create_model(self, name: str, kind: ModelKind, description: str = "") -> ModelRead:
        """Register a model name (409 if it exists)."""
        body = {"name": name, "kind": kind, "description": description}
        return self._call(ModelRead, "POST", "/v1/models", json=body)

    def list_models(self) -> list[ModelRead]:
        """Every registered model, following the pages."""
        return self._all_pages(ModelPageRead, "/v1/models")

    def get_model(self, name: str) -> ModelRead:
        """One registered model with its aliases and newest version."""
        return self._call(ModelRead, "GET", _model_path(name))

    # Versions

    def push(
        self, name: str, folder: Path, on_progress: ProgressCallback | None = None
    ) -> VersionRead:
        """Upload an artifact folder (manifest.json and its files) as the model's next version."""
        return self.push_folder(name, folder, on_progress).version

    def push_folder(
        self, name: str, folder: Path, on_progress: ProgressCallback | None = None
    ) -> Pushed:
        """Upload an artifact folder; the version it became, or the identical one already there.

        Every file the registry says it stored is compared with the local file's sha256 and
        size; a difference raises ChecksumMismatchError naming the file.
        """
        manifest = (folder / MANIFEST_FILE).read_bytes()
        local = list_files(folder)
        bundle = pack_bundle(folder)
        files = {
            "manifest": (MANIFEST_FILE, manifest, "application/json"),
            "bundle": ("bundle.tar.gz", _ProgressReader(bundle, on_progress), "application/gzip"),
        }
        response = self._send(
            "POST", f"{_model_path(name)}/versions", files=files, timeout=self._slow_timeout()
        )
        version = VersionRead.model_validate_json(response.content)
        # The registry keeps a manifest.json of its own (its name and version number in it).
        stored = {f.name: f for f in version.files if f.name != MANIFEST_FILE}
        for sent in local:
            got = stored.pop(sent.name, None)
            if got is None or (got.sha256, got.size) != (sent.sha256, sent.size):
                recorded = (
                    "did not store it"
                    if got is None
                    else f"recorded sha256 {got.sha256[:12]}… ({got.size} bytes)"
                )
                raise ChecksumMismatchError(
                    f"{sent.name} of {folder} has sha256 {sent.sha256[:12]}… ({sent.size} "
                    f"bytes) but the registry {recorded} for {name} version {version.version}"
                )
        if stored:
            raise ChecksumMismatchError(
                f"the registry recorded {sorted(stored)} for {name} version {version.version}, "
                f"which {folder} does not hold"
            )
        return Pushed(version=version, created=response.status_code != HTTPStatus.OK)

    def list_versions(self, name: str) -> list[VersionRead]:
        """Every version of a model, newest first."""
        return self._all_pages(VersionPageRead, f"{_model_path(name)}/versions")

    def get_version(self, name: str, version: int) -> VersionRead:
        """One version of a model."""
        return self._call(VersionRead, "GET", _version_path(name, version))

    def download(
        self,
        name: str,
        version: int,
        dest: Path,
        on_progress: ProgressCallback | None = None,
    ) -> VersionRead:
        """Download every file of a version into `dest`, which appears whole or not at all.

        Each file is checked against the sha256 and size the registry recorded for the version;
        `dest` must not exist yet, or be an empty folder.
        """
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise FileExistsError(f"{dest} already exists and is not an empty folder")
        described = self.get_version(name, version)
        total = sum(stored.size for stored in described.files)
        done = 0
        staging = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:8]}.partial"
        staging.mkdir(parents=True)
        try:
            for stored in described.files:
                if stored.name in ("", ".", "..") or Path(stored.name).name != stored.name:
                    raise ValueError(f"the registry listed a bad file name {stored.name!r}")
                digest = hashlib.sha256()
                size = 0
                url = f"{_version_path(name, version)}/files/{quote(stored.name, safe='')}"
                with (
                    self._stream("GET", url) as response,
                    (staging / stored.name).open("wb") as out,
                ):
                    for chunk in response.iter_bytes(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                        done += len(chunk)
                        if on_progress is not None:
                            on_progress(done, total)
                if size != stored.size or digest.hexdigest() != stored.sha256:
                    raise ChecksumMismatchError(
                        f"{stored.name} of {name} version {version} arrived with sha256 "
                        f"{digest.hexdigest()[:12]}… ({size} bytes) but the registry recorded "
                        f"{stored.sha256[:12]}… ({stored.size} bytes); nothing was written "
                        f"to {dest}"
                    )
            if dest.exists():
                dest.rmdir()
            staging.rename(dest)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return described

    # Aliases

    def get_alias(self, name: str, alias: str = PRODUCTION) -> VersionRead:
        """The version an alias points at (404 if it is unset)."""
        return self._call(VersionRead, "GET", _alias_path(name, alias))

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        reason: str = "",
        force: bool = False,
    ) -> AliasChangeRead:
        """Point an alias at a version; `production` passes the metric gate unless forced."""
        body = {"version": version, "reason": reason, "force": force}
        return self._call(AliasChangeRead, "PUT", _alias_path(name, alias), json=body)

    def rollback(self, name: str, reason: str) -> AliasChangeRead:
        """Send `production` back to the version that held it before its last change."""
        return self._call(
            AliasChangeRead, "POST", f"{_model_path(name)}/rollback", json={"reason": reason}
        )

    def history(self, name: str, alias: str = PRODUCTION) -> list[AliasChangeRead]:
        """Every change of an alias, newest first."""
        return self._all_pages(AliasChangePageRead, f"{_alias_path(name, alias)}/history")

    def alias_at(self, name: str, alias: str, time: dt.datetime) -> AliasAtRead:
        """Which version held an alias at `time` (timezone-aware)."""
        if time.tzinfo is None:
            raise ValueError(f"{time.isoformat()} has no timezone: give one, e.g. +00:00")
        return self._call(
            AliasAtRead, "GET", f"{_alias_path(name, alias)}/at", params={"time": time.isoformat()}
        )

    def audit(
        self,
        model: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        action: str | None = None,
    ) -> AuditPageRead:
        """A page of the audit log, newest first; pass `next_cursor` back for the next page."""
        params: dict[str, str | int] = {"limit": limit}
        if model is not None:
            params["model"] = model
        if cursor is not None:
            params["cursor"] = cursor
        if action is not None:
            params["action"] = action
        return self._call(AuditPageRead, "GET", "/v1/audit", params=params)

    # Lifecycle

    def archive(self, name: str, version: int, reason: str) -> VersionRead:
        """Archive a version: never promotable again, still downloadable (approver)."""
        return self._call(
            VersionRead, "POST", f"{_version_path(name, version)}/archive", json={"reason": reason}
        )

    def delete_alias(self, name: str, alias: str, reason: str) -> AliasChangeRead:
        """Remove an alias other than `production`."""
        return self._call(
            AliasChangeRead, "DELETE", _alias_path(name, alias), json={"reason": reason}
        )

    def describe_model(self, name: str, description: str, reason: str = "") -> ModelRead:
        """Replace a model's description."""
        body = {"description": description, "reason": reason}
        return self._call(ModelRead, "PATCH", _model_path(name), json=body)

    def describe_version(
        self, name: str, version: int, description: str, reason: str = ""
    ) -> VersionRead:
        """Replace a version's description."""
        body = {"description": description, "reason": reason}
        return self._call(VersionRead, "PATCH", _version_path(name, version), json=body)

    def compare(self, name: str, a: int, b: int) -> CompareRead:
        """Versions `a` and `b` side by side."""
        return self._call(
            CompareRead, "GET", f"{_model_path(name)}/compare", params={"a": a, "b": b}
        )

    def download_bundle(self, name: str, version: int, destination: Path) -> Path:
        """Write every file of a version, manifest.json included, as one gzip tar."""
        partial = destination.with_name(f".{destination.name}.{uuid.uuid4().hex}.part")
        try:
            with (
                self._stream(
                    "GET", f"{_version_path(name, version)}/bundle", timeout=self._slow_timeout()
                ) as response,
                partial.open("wb") as sink,
            ):
                for chunk in response.iter_bytes(_CHUNK):
                    sink.write(chunk)
            partial.replace(destination)
        finally:
            partial.unlink(missing_ok=True)
        return destination

    def _all_pages(self, page: type[_Page], url: str) -> list[Any]:
        """Every item of a paginated list, following `next_cursor` to the last page."""
        items: list[Any] = []
        cursor: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": _PAGE}
            if cursor is not None:
                params["cursor"] = cursor
            answer = self._call(page, "GET", url, params=params)
            items.extend(answer.items)
            cursor = answer.next_cursor
            if cursor is None:
                return items

    def _slow_timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.timeout, read=max(self.timeout, SLOW_READ_SECONDS))


class _ProgressReader(io.BytesIO):
    """Bytes read by the multipart encoder, reporting how far it got after every read."""

    def __init__(self, data: bytes, on_progress: ProgressCallback | None):
        super().__init__(data)
        self._total = len(data)
        self._on_progress = on_progress

    def read(self, size: int | None = -1, /) -> bytes:
        """Read like BytesIO, then report the position (so a re-sent body does not count twice)."""
        chunk = super().read(size)
        if self._on_progress is not None:
            self._on_progress(self.tell(), self._total)
        return chunk


def _model_path(name: str) -> str:
    return f"/v1/models/{quote(name, safe='')}"


def _version_path(name: str, version: int) -> str:
    return f"{_model_path(name)}/versions/{version}"


def _alias_path(name: str, alias: str) -> str:
    return f"{_model_path(name)}/aliases/{quote(alias, safe='')}"
