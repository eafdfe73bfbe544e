"""The clock loops and alerts read: the current time, aware and in UTC."""

from __future__ import annotations

import datetime as dt
import time

from marketsense.common.clock import Clock, utc_now


def test_utc_now_is_the_current_instant_aware_in_utc() -> None:
    before = time.time()
    now = utc_now()
    after = time.time()

    assert now.tzinfo is dt.UTC
    assert now.utcoffset() == dt.timedelta(0)
    assert before <= now.timestamp() <= after


def test_utc_now_compares_with_times_of_other_zones_by_instant() -> None:
    tokyo = dt.timezone(dt.timedelta(hours=9))
    clock: Clock = utc_now

    first = clock()
    in_tokyo = first.astimezone(tokyo)

    assert in_tokyo == first
    assert clock() >= in_tokyo
