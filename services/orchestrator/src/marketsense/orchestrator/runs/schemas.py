"""Orchestrator API models."""

from __future__ import annotations

import datetime as dt

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SkipValidation, field_validator

from marketsense.common.api_models import IsoDay, Symbol


class RunCreate(BaseModel):
    """A request to run the pipeline for one day over a set of symbols."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"as_of": "2026-11-25", "universe": ["AAPL", "MSFT"]}]},
    )

    as_of: IsoDay
    """Trading day to run for: a session of the orchestrator's exchange (XNYS unless
    configured), not in the future."""
    # The symbols are checked by the route once their count is within the service's
    # `max_symbols`: checking each of a far longer list first is the work the limit prevents.
    universe: list[SkipValidation[Symbol]] = Field(
        min_length=1, validation_alias=AliasChoices("universe", "symbols")
    )
    """Distinct symbols to run, at most the service's `max_symbols` (10,000 unless configured);
    each a letter or digit then up to 15 letters, digits, '.' or '-', read in upper case
    (`symbols` is accepted too)."""

    @field_validator("as_of")
    @classmethod
    def _not_in_future(cls, as_of: dt.date) -> dt.date:
        if as_of > dt.datetime.now(dt.UTC).date():
            raise ValueError(f"{as_of} is in the future")
        return as_of


class StageCounts(BaseModel):
    """How many tasks of one stage are in each state."""

    stage: str
    """Stage name."""
    counts: dict[str, int]
    """Tasks per state."""


class FailedSymbol(BaseModel):
    """A symbol that failed, where and why."""

    symbol: str
    """Stock symbol."""
    stage: str
    """Stage that failed."""
    attempts: int
    """Attempts made."""
    last_error: str | None
    """The last error."""


class TaskNotes(BaseModel):
    """What a stage cleaned or dropped from a symbol's input, and why."""

    symbol: str
    """Stock symbol."""
    stage: str
    """Stage that wrote the notes."""
    notes: list[str]
    """One reason per line, such as "dropped 2 rows with non-positive prices"."""


class RunRead(BaseModel):
    """A run and its progress."""

    id: str
    """Run id."""
    as_of: dt.date
    """Trading day (a backfill's last)."""
    kind: str = "daily"
    """`daily`, or `backfill` for a run over every session from `start` to `as_of`."""
    start: dt.date | None = None
    """First trading day of a backfill; null for a daily run."""
    state: str
    """PENDING, RUNNING, SUCCESS, PARTIAL, FAILED or CANCELLED."""
    symbols: int
    """Symbols in the run."""
    created_at: dt.datetime
    """When the run was created."""
    finished_at: dt.datetime | None
    """When the run reached a final state."""
    stages: list[StageCounts]
    """Task counts per stage and state."""
    failed: list[FailedSymbol]
    """Every failed symbol with its stage, attempts and last error."""
    cleaned: list[TaskNotes]
    """Every task whose input was cleaned, with the reasons."""


class RunSummary(BaseModel):
    """A run as listed: its day, state and size."""

    id: str
    """Run id."""
    as_of: dt.date
    """Trading day (a backfill's last)."""
    kind: str = "daily"
    """`daily`, or `backfill` for a run over every session from `start` to `as_of`."""
    start: dt.date | None = None
    """First trading day of a backfill; null for a daily run."""
    state: str
    """PENDING, RUNNING, SUCCESS, PARTIAL, FAILED or CANCELLED."""
    symbols: int
    """Symbols in the run."""
    created_at: dt.datetime
    """When the run was created."""
    finished_at: dt.datetime | None
    """When the run reached a final state."""


class RunPage(BaseModel):
    """One page of runs, newest first."""

    items: list[RunSummary]
    """Runs on this page."""
    next_cursor: str | None
    """Pass as `cursor` for the next page; null on the last page."""


class RunAction(BaseModel):
    """An operator's retry or cancellation of a run, and why."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "source outage fixed"}]}
    )

    reason: str = Field(min_length=1, max_length=2000)
    """Why, for the audit log."""


class RunActionRead(BaseModel):
    """What a retry or cancellation did."""

    run: RunRead
    """The run after the action."""
    tasks: int
    """Tasks the action re-queued or cancelled."""
