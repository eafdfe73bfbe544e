"""The retraining API's models."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict

from marketsense.retraining.states import RetrainState


class RetrainRead(BaseModel):
    """A retrain request: its window, progress and outcome."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    model_name: str
    state: RetrainState
    """REQUESTED, WAITING (for more stored days), TRAINING, PUSHING, DONE or FAILED."""
    reason: str
    """Why it was asked for (the decay monitoring found)."""
    window_start: dt.date
    window_end: dt.date
    requested_at: dt.datetime
    updated_at: dt.datetime
    attempts: int
    """Times a worker took it; a lost worker's attempt counts."""
    rows: int | None
    """Labelled rows of the training set; null until it is built."""
    days: int | None
    """Trading days they cover (while WAITING: the days found so far)."""
    training_set_sha256: str | None
    """sha256 of the training set's Parquet bytes (stored under `retraining/<id>/`)."""
    runs: list[str]
    """Finished runs whose stored features and bars gave the training set."""
    version: int | None
    """Registry version of the challenger; null until DONE."""
    error: str | None
    """Why the latest attempt failed, or what a WAITING request waits for."""


class RetrainPage(BaseModel):
    """A page of retrain requests, newest first."""

    items: list[RetrainRead]
    next_cursor: str | None
    """Pass back as `cursor` for the next page; null on the last one."""
