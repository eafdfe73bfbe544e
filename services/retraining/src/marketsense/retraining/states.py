"""A retrain request's states and the rules that move it: who may take it, and when it is spent."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum


class RetrainState(StrEnum):
    """Where a retrain request stands."""

    REQUESTED = "REQUESTED"
    """Recorded; waiting for a worker."""
    WAITING = "WAITING"
    """Too few stored days in the window yet; tried again when a run finishes."""
    TRAINING = "TRAINING"
    """A worker builds the training set and trains the challenger."""
    PUSHING = "PUSHING"
    """A worker pushes the challenger to the registry and points `challenger` at it."""
    DONE = "DONE"
    """The challenger is in the registry under the alias `challenger`."""
    FAILED = "FAILED"
    """Given up: the error says why, and one alert went out."""


TAKEN_AGAIN = (RetrainState.REQUESTED, RetrainState.TRAINING, RetrainState.PUSHING)
"""States a worker takes a request in once its lease is free: new requests, and those whose
worker stopped renewing its lease mid-way (killed while training or pushing)."""

FINAL = (RetrainState.DONE, RetrainState.FAILED)
"""States a request never leaves."""


def lease_free(claimed_at: dt.datetime | None, *, now: dt.datetime, lease_seconds: float) -> bool:
    """Whether no worker holds the request: never taken, or its last lease has run out."""
    return claimed_at is None or claimed_at <= now - dt.timedelta(seconds=lease_seconds)


def lease_cutoff(now: dt.datetime, lease_seconds: float) -> dt.datetime:
    """Leases taken at or before this moment have run out."""
    return now - dt.timedelta(seconds=lease_seconds)


def spent(attempts: int, max_attempts: int) -> bool:
    """Whether a request taken `attempts` times may not be tried again."""
    return attempts >= max_attempts


def over_the_limit(attempts: int, max_attempts: int) -> bool:
    """Whether a request just taken for the `attempts`-th time is over its attempts: the
    workers that took it before were lost mid-way, on its last allowed attempt."""
    return attempts > max_attempts
