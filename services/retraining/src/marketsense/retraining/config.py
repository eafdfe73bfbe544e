"""Retraining settings: the trainer, how much stored data a challenger needs, and the lease and
retries that make a killed worker's request run again."""

from __future__ import annotations

from pydantic import Field

from marketsense.common.alerts import AlertSettings
from marketsense.common.registry_calls import RegistryAccessSettings
from marketsense.common.settings import CommonSettings

TRAINER_NAMES = ("torch-mlp", "logistic")
"""Trainers `retraining_trainer` may name (`marketsense.modelkit.trainers.TRAINERS`)."""


class RetrainingSettings(CommonSettings, AlertSettings, RegistryAccessSettings):
    """Settings of the retraining worker."""

    retraining_trainer: str = Field(default="torch-mlp", pattern="^(torch-mlp|logistic)$")
    """Trainer of challengers: `torch-mlp` (a small network) or `logistic` (the baseline's)."""

    retraining_seed: int = Field(default=0, ge=0, le=2**31 - 1)
    """Seed of the trainer, so the same training set gives the same model."""

    retraining_min_days: int = Field(default=10, ge=2, le=2520)
    """Fewest distinct trading days of labelled rows, from the window's start, before training;
    with fewer the request waits for the next finished run."""

    retraining_max_rows: int = Field(default=200_000, ge=300, le=5_000_000)
    """Most labelled rows one challenger is trained on: the newest whole days are kept."""

    retraining_lease_seconds: float = Field(default=900, ge=1, le=86_400)
    """How long a taken request stays a worker's without a heartbeat; a worker killed mid-way
    leaves its request to be taken again after this."""

    retraining_max_attempts: int = Field(default=3, ge=1, le=20)
    """Attempts at a request (a worker lost mid-way counts) before it is FAILED with an alert."""

    retraining_backoff_seconds: float = Field(default=5, ge=0, le=3600)
    """First wait before a failed attempt is tried again; it doubles each attempt."""

    retraining_poll_seconds: float = Field(default=30, ge=0.1, le=3600)
    """How often the worker looks for requests whose lease ran out, without being woken."""
