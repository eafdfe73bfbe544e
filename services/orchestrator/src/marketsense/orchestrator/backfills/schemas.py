"""Backfill API models."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, SkipValidation, model_validator

from marketsense.common.api_models import IsoDay, Symbol
from marketsense.orchestrator.runs.schemas import RunRead


class BackfillCreate(BaseModel):
    """A request to run the pipeline over every trading day of a range, for a set of symbols."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"start": "2025-01-02", "end": "2025-12-31", "symbols": ["AAPL", "MSFT"]}]
        },
    )

    start: IsoDay
    """First day of the range; a day that is no trading session moves to the next session."""
    end: IsoDay
    """Last day of the range (not in the future); a day that is no trading session moves to the
    previous session."""
    # Checked by the route once their count is within `max_symbols`, as for runs.
    symbols: list[SkipValidation[Symbol]] = Field(min_length=1)
    """Distinct symbols, at most the service's `max_symbols`; each a letter or digit then up to
    15 letters, digits, '.' or '-', read in upper case."""
    # Strict: JSON `false` is no share, though Python would read it as 0.
    failure_threshold: float | None = Field(default=None, ge=0, le=1, strict=True)
    """Share of failed symbols up to which the run ends PARTIAL; the service's by default."""
    reason: str = Field(default="", max_length=2000)
    """Why, for the audit log."""

    @model_validator(mode="after")
    def _ordered_and_past(self) -> BackfillCreate:
        if self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        if self.end > dt.datetime.now(dt.UTC).date():
            raise ValueError(f"end {self.end} is in the future")
        return self


class BackfillRead(BaseModel):
    """A backfill's run, the trading sessions it covers, and what it has written."""

    run: RunRead
    """The run: kind `backfill`, `start` its first session and `as_of` its last."""
    sessions: int
    """Trading sessions from `run.start` to `run.as_of`."""
    predictions: int
    """Predictions the run has written so far."""
    tasks_requeued: int = 0
    """Tasks this request sent again: the failed ones of an ended run, or the waiting ones of a
    live run whose events may have been lost."""
    notes: list[str] = []
    """How the request was read, such as a start day that is no trading session."""
