"""The daily schedule: start a run for the exchange's session each time the cron expression fires.

A fire counts for the exchange's date at that instant (21:30 UTC is 16:30 in New York, the
session just closed); a day the exchange does not trade starts nothing and raises nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable

from croniter import croniter

from marketsense.common.calendar import exchange_calendar
from marketsense.common.clock import Clock, utc_now
from marketsense.common.runtime import Runtime
from marketsense.orchestrator.audit.service import SCHEDULER
from marketsense.orchestrator.config import OrchestratorSettings
from marketsense.orchestrator.runs.flows import RunConflict, start_run

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


class Scheduler:
    """Starts the scheduled runs; clock and sleep are injectable so tests need not wait."""

    def __init__(
        self,
        runtime: Runtime,
        settings: OrchestratorSettings,
        *,
        clock: Clock = utc_now,
        sleep: Sleep = asyncio.sleep,
    ):
        if not settings.schedule_cron:
            raise ValueError("no schedule: set MARKETSENSE_SCHEDULE_CRON")
        if not settings.universe():
            raise ValueError("a schedule needs symbols: set MARKETSENSE_SCHEDULE_UNIVERSE")
        self.runtime = runtime
        self.settings = settings
        self.cron = settings.schedule_cron
        self.calendar = exchange_calendar(settings.exchange)
        self.clock = clock
        self.sleep = sleep

    def next_fire(self) -> dt.datetime:
        """The next time (UTC) the cron expression fires after now."""
        fire: dt.datetime = croniter(self.cron, self.clock().astimezone(dt.UTC)).get_next(
            dt.datetime
        )
        return fire

    async def run_forever(self) -> None:
        """Start a run at every fire time until cancelled; a failed start is only logged."""
        while True:
            try:
                await self.wait_and_fire()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduled run could not start; waiting for the next time")
                # Past the failed fire time, so the same one is not retried in a tight loop.
                await self.sleep(1)

    async def wait_and_fire(self) -> str | None:
        """Sleep until the next fire time, then start the run of the exchange's day then; its id,
        or None."""
        fire = self.next_fire()
        while (remaining := (fire - self.clock()).total_seconds()) > 0:
            # Sleep in bounded steps: a suspended laptop or a changed clock is noticed.
            await self.sleep(min(remaining, 60))
        return await self.fire(self.calendar.local_day(fire))

    async def fire(self, as_of: dt.date) -> str | None:
        """Start the run for `as_of`; None if the exchange does not trade that day or the day
        already has a live run (another replica)."""
        if not self.calendar.is_session(as_of):
            # Holidays and weekends are expected: a note in the log, no run, no alert.
            log.info("no scheduled run: %s", self.calendar.not_a_session(as_of))
            return None
        try:
            run_id = await start_run(
                runtime=self.runtime,
                as_of=as_of,
                symbols=self.settings.universe(),
                lookback_days=self.settings.lookback_days,
                failure_threshold=self.settings.failure_threshold,
                actor=SCHEDULER,
            )
        except RunConflict as exc:
            log.info("scheduled run for %s not started: %s", as_of, exc)
            return None
        log.info("scheduled run %s started for %s", run_id, as_of)
        return run_id
