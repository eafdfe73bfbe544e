"""The retraining worker: takes requests under a lease, builds the training set from what the
pipeline stored, trains a challenger off the event loop, pushes it once, names it `challenger`.

Every step is recorded on the request's row. A failed attempt is retried with a growing wait up
to `retraining_max_attempts`, then the request is FAILED with one alert; a trainer's refusal of
the data fails it at once (more attempts read the same data)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_not_exception_type,
    wait_exponential,
)

from marketsense.common.alerts import Notifier
from marketsense.common.cancelling import cancel_and_wait
from marketsense.common.clock import utc_now
from marketsense.common.registry_calls import RegistryCalls
from marketsense.common.runtime import Runtime
from marketsense.retraining import publishing, store, trainers
from marketsense.retraining.alerts import retrain_failed_alert
from marketsense.retraining.config import RetrainingSettings
from marketsense.retraining.metrics import IN_PROGRESS, RETRAIN_SECONDS, RETRAINS, TRAINING_ROWS
from marketsense.retraining.states import RetrainState, over_the_limit, spent
from marketsense.retraining.store import Claim, LeaseLost
from marketsense.retraining.training_set import TooFewDays, TrainingSet, build_training_set

log = logging.getLogger(__name__)


class Refused(Exception):
    """An attempt that no retry can mend; the request fails at once."""


class RetrainWorker:
    """Runs retrain requests one at a time, woken by new requests and finished runs."""

    def __init__(
        self,
        runtime: Runtime,
        settings: RetrainingSettings,
        *,
        calls: Callable[[], RegistryCalls],
        notifier: Notifier,
    ):
        self.runtime, self.settings, self.notifier = runtime, settings, notifier
        self._make_calls = calls
        self._calls: RegistryCalls | None = None
        self._wake = asyncio.Event()

    @property
    def calls(self) -> RegistryCalls:
        """The registry's API client, once started."""
        if self._calls is None:
            raise RuntimeError("the retraining worker is not started")
        return self._calls

    async def start(self) -> None:
        """Make the registry's client; a missing registry setting fails here, naming it."""
        self._calls = self._make_calls()

    async def stop(self) -> None:
        """Close the registry's client."""
        if self._calls is not None:
            await self._calls.aclose()
            self._calls = None

    def wake(self) -> None:
        """Look for requests now."""
        self._wake.set()

    async def run(self) -> None:
        """Work through takeable requests, then sleep until woken or the poll interval passes."""
        while True:
            self._wake.clear()
            try:
                while await self.run_next():
                    pass
            except Exception:
                # The database may be away: the next wake or poll tries again.
                log.exception("retraining worker could not take a request")
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
            # that arrives as its timeout fires, and the app's stop would wait on this loop forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.retraining_poll_seconds):
                    await self._wake.wait()

    async def run_next(self) -> bool:
        """Take and work on the oldest takeable request; whether there was one."""
        claim = await store.claim_next(
            self.runtime, now=utc_now(), lease_seconds=self.settings.retraining_lease_seconds
        )
        if claim is None:
            return False
        if over_the_limit(claim.attempts, self.settings.retraining_max_attempts):
            lost = f"{claim.attempts - 1} attempt(s) started and none finished (workers lost)"
            await self._fail(claim, lost)
            return True
        IN_PROGRESS.inc()
        try:
            await self._with_retries(claim)
        except LeaseLost as exc:
            log.warning("%s", exc)
        finally:
            IN_PROGRESS.dec()
        return True

    async def _with_retries(self, claim: Claim) -> None:
        """Attempt the request, taking it again after each retryable failure."""
        held = claim
        retrying = AsyncRetrying(
            stop=lambda _state: spent(held.attempts, self.settings.retraining_max_attempts),
            wait=wait_exponential(multiplier=self.settings.retraining_backoff_seconds, max=3600),
            # Exception only: tenacity would otherwise retry a CancelledError, and a worker
            # asked to stop would take its request again instead.
            retry=retry_if_exception_type(Exception)
            & retry_if_not_exception_type((Refused, LeaseLost)),
            before_sleep=self._note_failure(lambda: held),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    if attempt.retry_state.attempt_number > 1:
                        held = await store.retake(self.runtime, held, now=utc_now())
                    await self._attempt(held)
        except Refused:
            return  # its failure is recorded where it was refused
        except LeaseLost:
            raise
        except Exception as exc:
            await self._fail(held, _described(exc))

    def _note_failure(
        self, held: Callable[[], Claim]
    ) -> Callable[[RetryCallState], Awaitable[None]]:
        async def note(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning("retrain %s attempt failed, retrying: %s", held().id, error)
            await store.move(self.runtime, held(), now=utc_now(), error=_described(error))

        return note

    async def _attempt(self, claim: Claim) -> None:
        """One attempt: the set, the model, the push and the alias, each step recorded."""
        started = time.monotonic()
        async with self._heartbeat(claim):
            built = await build_training_set(
                self.runtime,
                retrain_id=claim.id,
                start=claim.window_start,
                min_days=self.settings.retraining_min_days,
                max_rows=self.settings.retraining_max_rows,
            )
            if isinstance(built, TooFewDays):
                await store.move(
                    self.runtime,
                    claim,
                    now=utc_now(),
                    state=RetrainState.WAITING.value,
                    # Waiting for data is not a failed attempt: it does not use one up.
                    attempts=claim.attempts - 1,
                    days=built.days,
                    error=built.reason,
                    claimed_at=None,
                )
                return
            await self._record_set(claim, built)
            version = await publishing.pushed_before(
                self.calls, name=claim.model_name, retrain_id=claim.id
            )
            if version is None:
                version = await self._train_and_push(claim, built)
            await store.move(self.runtime, claim, now=utc_now(), state=RetrainState.PUSHING.value)
            await publishing.name_challenger(
                self.calls,
                name=claim.model_name,
                version=version,
                reason=f"retrain {claim.id}: {claim.reason}"[:500],
            )
            await store.move(
                self.runtime,
                claim,
                now=utc_now(),
                state=RetrainState.DONE.value,
                version=version,
                error=None,
            )
        RETRAIN_SECONDS.labels(claim.model_name).observe(time.monotonic() - started)
        RETRAINS.labels(claim.model_name, "done").inc()
        log.info(
            "retrain %s done: %s version %d is the challenger", claim.id, claim.model_name, version
        )

    async def _record_set(self, claim: Claim, built: TrainingSet) -> None:
        TRAINING_ROWS.labels(claim.model_name).set(built.rows)
        await store.move(
            self.runtime,
            claim,
            now=utc_now(),
            rows=built.rows,
            days=built.days,
            training_set_sha256=built.ref.sha256,
            runs=built.runs,
            error=None,
        )

    async def _train_and_push(self, claim: Claim, built: TrainingSet) -> int:
        """Train in a worker thread, then push; the new version's number."""
        trainer = trainers.trainer_table()[self.settings.retraining_trainer]
        directory = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="retrain-"))
        training = {
            publishing.RETRAIN_KEY: claim.id,
            "training_set_sha256": built.ref.sha256,
            "training_set_uri": built.ref.uri,
            "training_runs": str(len(built.runs)),
        }
        try:
            try:
                await asyncio.to_thread(
                    trainers.train,
                    trainer,
                    built.table,
                    directory,
                    name=claim.model_name,
                    seed=self.settings.retraining_seed,
                    training=training,
                )
            except trainers.insufficient_data_errors() as exc:
                await self._fail(claim, f"the trainer refused the data: {exc}")
                raise Refused(str(exc)) from exc
            await store.move(self.runtime, claim, now=utc_now(), state=RetrainState.PUSHING.value)
            return await publishing.push_challenger(
                self.calls, name=claim.model_name, directory=directory
            )
        finally:
            await asyncio.to_thread(shutil.rmtree, directory, True)

    async def _fail(self, claim: Claim, error: str) -> None:
        """FAILED with the error, counted, and one alert."""
        await store.move(
            self.runtime, claim, now=utc_now(), state=RetrainState.FAILED.value, error=error
        )
        RETRAINS.labels(claim.model_name, "failed").inc()
        log.error("retrain %s failed: %s", claim.id, error)
        await self.notifier.notify(retrain_failed_alert(claim, error=error))

    @contextlib.asynccontextmanager
    async def _heartbeat(self, claim: Claim) -> AsyncIterator[None]:
        """Renew the lease while an attempt runs, so only a lost worker's lease runs out."""

        async def beat() -> None:
            every = self.settings.retraining_lease_seconds / 3
            while True:
                await asyncio.sleep(every)
                with contextlib.suppress(Exception):
                    await store.move(self.runtime, claim, now=utc_now(), claimed_at=utc_now())

        task = asyncio.create_task(beat())
        try:
            yield
        finally:
            await cancel_and_wait(task)


def _described(error: BaseException | None) -> str:
    """An error as one line for the request's row."""
    if error is None:
        return "unknown error"
    return f"{type(error).__name__}: {error}"[:2000]
