"""Serve whatever version holds an alias of a registered model (`production` unless told
otherwise), swapping it in live."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import shutil
import uuid
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from pydantic import Field
from sqlalchemy import select

from marketsense.common.bus import Subscription
from marketsense.common.cancelling import cancel_and_wait
from marketsense.common.db.models import ModelAlias
from marketsense.common.errors import NonRetryableError, RetryableError
from marketsense.common.events import Envelope, ModelPromoted
from marketsense.common.metrics import MODEL_INFO, MODEL_LOAD_FAILURES, MODEL_SWAPS
from marketsense.common.runtime import Runtime
from marketsense.common.settings import CommonSettings
from marketsense.models.files import MANIFEST_FILE
from marketsense.models.serving_reports import ServingReport, ServingReporter
from marketsense.models.slot import ModelSlot
from marketsense.models.versions import (
    PRODUCTION,
    alias_target,
    fetch_bundle,
    manifest_file,
    version_files,
)

log = logging.getLogger(__name__)


class LiveModelSettings(CommonSettings):
    """Settings of a service that follows a registered model's production version."""

    model_cache_dir: Path | None = None
    """Where downloaded model versions are kept; unset means `<home>/model-cache`."""

    model_poll_seconds: float = Field(default=30.0, gt=0)
    """How often the production alias is read even without an event, to heal a missed one."""

    def resolved_model_cache_dir(self) -> Path:
        """The model cache folder, falling back to one under `home`."""
        return self.model_cache_dir or self.home / "model-cache"


class _Manifest(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...


class ServedModel(Protocol):
    """A loaded model artifact: anything with a manifest naming it and its version."""

    @property
    def manifest(self) -> _Manifest:
        """The artifact's manifest."""
        ...


M = TypeVar("M", bound=ServedModel)


class Source(StrEnum):
    """Where the served model came from."""

    REGISTRY = "registry"
    """The version holding the registry's production alias."""
    LOCAL = "local"
    """The configured local folder, used while the registry has no production version."""


class Refresh(StrEnum):
    """What one look at the production alias did."""

    SWAPPED = "swapped"
    """A new version is now served."""
    UNCHANGED = "unchanged"
    """The served version is still the production one (or already failed to load)."""
    NOT_REGISTERED = "not-registered"
    """The registry has no production version of the model."""
    FAILED = "failed"
    """The production version could not be used; the previous model keeps serving."""


Variant = Callable[[M], str]
"""Names the graph a loaded model runs (`fp32` or `int8`)."""
Loader = Callable[[Path], M]
"""Builds a model from an artifact folder; raises on a bad artifact."""
WarmUp = Callable[[M], None]
"""Runs a model once, so its first real request pays no first-call costs and bad graphs fail."""
SwapHook = Callable[[M], None]
"""Called on the event loop right after a model is installed."""


class LiveModel(Generic[M]):
    """Owns a model slot and keeps it on the version one alias of a registered model names.

    `production` is what a service serves; another alias (`challenger`) is followed for shadow
    scoring: while it names no version the slot is empty (never the local fallback), and the
    replica's serving report and the model-info gauge stay production's alone.

    The database is the truth: `model.promoted` events and a periodic poll only trigger a read of
    the alias, so late, repeated or out-of-order events are harmless. A version that cannot be
    downloaded, verified, loaded or warmed up leaves the previous model serving, is counted in
    `marketsense_model_load_failures_total`, and is not tried again until the alias moves again
    or the process restarts.
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        name: str,
        slot: ModelSlot[M],
        loader: Loader[M],
        warm_up: WarmUp[M],
        cache_dir: Path,
        poll_seconds: float,
        fallback: Path | None = None,
        variant: Variant[M] | None = None,
        reporter: ServingReporter | None = None,
        alias: str = PRODUCTION,
    ):
        self.runtime = runtime
        self.name = name
        self.alias = alias
        self.slot = slot
        self.loader = loader
        self.warm_up = warm_up
        self.cache_dir = cache_dir
        self.poll_seconds = poll_seconds
        self.fallback = fallback
        self.variant_of: Variant[M] = variant or _fp32
        self.reporter = reporter or ServingReporter(runtime)
        self.version: str | None = None
        """Version served now (the registry's number, or the local manifest's version)."""
        self.source: Source | None = None
        """Where the served version came from."""
        self.variant: str | None = None
        """Graph the served version runs (`fp32` or `int8`)."""
        self.on_swap: list[SwapHook[M]] = []
        self._lock = asyncio.Lock()
        # (version, when the alias moved to it): a new promotion of the same version retries.
        self._failed: tuple[str, dt.datetime | None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._kept: list[Path] = []

    def subscription(self, service: str) -> Subscription:
        """A handler for `model.promoted` in a consumer group of this process alone.

        Every replica must see every promotion, so the group is unique to the process.
        """
        return Subscription.of(
            ModelPromoted,
            self._on_promoted,
            group=self.runtime.group(f"{service}.models.{uuid.uuid4().hex[:8]}"),
        )

    async def _on_promoted(self, _envelope: Envelope, payload: ModelPromoted) -> None:
        if payload.model_name != self.name or payload.alias != self.alias:
            return
        if await self.refresh() is Refresh.SWAPPED:
            await self.report()

    @property
    def shadow(self) -> bool:
        """Whether this follows an alias other than production (scored beside it, not served)."""
        return self.alias != PRODUCTION

    async def start(self) -> None:
        """Load the alias's version (or, for production, the local fallback), then poll in the
        background."""
        try:
            outcome = await self.refresh()
        except RetryableError as exc:
            log.error("cannot read the %s version of %s yet: %s", self.alias, self.name, exc)
            outcome = Refresh.FAILED
        if outcome is Refresh.NOT_REGISTERED and not self.shadow:
            await self._load_fallback()
        await self.report()
        self._poller = asyncio.create_task(self._poll(), name=f"poll-{self.name}")

    async def stop(self) -> None:
        """Stop polling and stop reporting the served version."""
        if self._poller is not None:
            await cancel_and_wait(self._poller)
            self._poller = None
        self._forget_info()
        if not self.shadow:
            await self.reporter.withdraw(self.name)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self.refresh()
            except Exception:  # the next poll tries again; the served model stays
                log.warning(
                    "checking the %s version of %s failed", self.alias, self.name, exc_info=True
                )
            # Also a heartbeat: the registry counts a replica as serving while its report is fresh.
            await self.report()

    def serving(self) -> ServingReport | None:
        """What this process serves now, or None before a model is loaded."""
        if self.version is None or self.source is None or self.variant is None:
            return None
        return ServingReport(
            service=self.runtime.service,
            model=self.name,
            version=self.version,
            variant=self.variant,
            source=self.source.value,
        )

    def reported(self) -> dict[str, Any] | None:
        """`serving()` as JSON-ready fields, for `/readyz` (with the alias of a shadow)."""
        report = self.serving()
        if report is None:
            return None
        fields = report.as_dict()
        return fields | {"alias": self.alias} if self.shadow else fields

    async def report(self) -> None:
        """Tell the registry what this replica serves; a failure is logged, serving goes on.
        A shadow serves nobody, so it reports nothing."""
        report = self.serving()
        if report is not None and not self.shadow:
            await self.reporter.report(report)

    async def refresh(self) -> Refresh:
        """Load the alias's version if it is not loaded yet; raise RetryableError on a
        passing fault (database or object store unavailable)."""
        async with self._lock:
            try:
                async with self.runtime.database.session() as session:
                    target = await alias_target(session, self.name, self.alias)
                    moved_at = await session.scalar(
                        select(ModelAlias.updated_at).where(
                            ModelAlias.model_name == self.name, ModelAlias.alias == self.alias
                        )
                    )
            except Exception as exc:
                raise RetryableError(
                    f"cannot read the {self.name} {self.alias} alias: {exc}"
                ) from exc
            if target is None:
                if self.shadow:
                    self._unload()
                return Refresh.NOT_REGISTERED
            version = str(target.version)
            if self.source is Source.REGISTRY and version == self.version:
                return Refresh.UNCHANGED
            attempt = (version, moved_at)
            if attempt == self._failed:
                return Refresh.UNCHANGED
            try:
                files = version_files(target)
                manifest = manifest_file(files)
                if manifest is None:
                    raise NonRetryableError(f"version {version} has no {MANIFEST_FILE}")
                directory = self.cache_dir / self.name / f"{version}-{manifest.sha256[:12]}"
                # Raises ObjectIntegrityError or ObjectNotFound (non-retryable) for bad objects.
                await fetch_bundle(self.runtime.store, files, directory)
            except (NonRetryableError, ValueError) as exc:
                self._fail(attempt, exc)
                return Refresh.FAILED
            except Exception as exc:
                raise RetryableError(
                    f"cannot download {self.name} version {version}: {exc}"
                ) from exc
            try:
                model = await asyncio.to_thread(self._load, directory)
            except Exception as exc:  # whatever onnxruntime or the tokenizer raise for bad files
                self._fail(attempt, exc)
                return Refresh.FAILED
            self._install(model, version=version, source=Source.REGISTRY)
            log.info(
                "%s %s version %s (%s graph) from the registry (%s)",
                "shadow-scoring" if self.shadow else "serving",
                self.name,
                version,
                self.variant,
                self.alias,
            )
            # The previous version stays on disk, so a rollback loads without a download.
            self._kept = [directory, *(d for d in self._kept if d != directory)][:2]
            await asyncio.to_thread(_prune, self.cache_dir / self.name, keep=set(self._kept))
            return Refresh.SWAPPED

    def _load(self, directory: Path) -> M:
        model = self.loader(directory)
        self.warm_up(model)
        return model

    def _fail(self, attempt: tuple[str, dt.datetime | None], error: BaseException) -> None:
        self._failed = attempt
        version = attempt[0]
        MODEL_LOAD_FAILURES.labels(self.runtime.service, self.name, version).inc()
        log.error(
            "cannot serve %s version %s; still serving %s: %s: %s",
            self.name,
            version,
            f"version {self.version}" if self.version is not None else "no model",
            type(error).__name__,
            error,
        )

    async def _load_fallback(self) -> None:
        if self.fallback is None:
            log.error(
                "the registry has no production version of %s and no local folder is set",
                self.name,
            )
            return
        try:
            model = await asyncio.to_thread(self._load, self.fallback)
        except Exception as exc:
            log.error(
                "the registry has no production version of %s and %s does not load: %s: %s",
                self.name,
                self.fallback,
                type(exc).__name__,
                exc,
            )
            return
        self._install(model, version=model.manifest.version, source=Source.LOCAL)
        log.info(
            "serving %s version %s (%s graph) from the local folder %s "
            "(the registry has no production version of %s)",
            model.manifest.name,
            model.manifest.version,
            self.variant,
            self.fallback,
            self.name,
        )

    def _install(self, model: M, *, version: str, source: Source) -> None:
        replacing = self.slot.current is not None
        # One attribute assignment: a reader sees the old model or the new one, never a mix.
        self.slot.current = model
        self._forget_info()
        self.version, self.source = version, source
        self.variant = self.variant_of(model)
        if not self.shadow:
            MODEL_INFO.labels(
                self.runtime.service, self.name, version, source.value, self.variant
            ).set(1)
            if replacing:
                MODEL_SWAPS.labels(self.runtime.service, self.name).inc()
        for hook in self.on_swap:
            hook(model)

    def _unload(self) -> None:
        """Empty a shadow's slot: its alias names no version any more."""
        if self.slot.current is None:
            return
        self.slot.current = None
        log.info("%s has no %s version any more; shadow scoring stops", self.name, self.alias)
        self.version = self.source = self.variant = None
        self._failed = None

    def _forget_info(self) -> None:
        if self.shadow:
            return
        if self.version is not None and self.source is not None and self.variant is not None:
            with contextlib.suppress(KeyError):
                MODEL_INFO.remove(
                    self.runtime.service, self.name, self.version, self.source.value, self.variant
                )


def _fp32(_model: object) -> str:
    return "fp32"


def _prune(folder: Path, *, keep: set[Path]) -> None:
    """Delete downloaded versions other than `keep`; leave downloads in progress (dot names)."""
    try:
        children = list(folder.iterdir())
    except OSError:  # a cache that cannot be listed is only a cache: serving goes on
        return
    for child in children:
        if child.is_dir() and child not in keep and not child.name.startswith("."):
            shutil.rmtree(child, ignore_errors=True)
