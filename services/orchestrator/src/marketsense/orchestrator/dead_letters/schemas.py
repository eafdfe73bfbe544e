"""API models for listing and replaying dead letters."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from marketsense.common.api_models import RowId

VALUE_PREVIEW_CHARS = 4000
"""Characters of a dead letter's bytes the API shows."""


class DeadLetterRead(BaseModel):
    """A dead-lettered record: where it failed, why, and whether it was replayed."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    """Index id; replay takes it."""
    original_topic: str
    """Topic the record failed on (without the deployment's prefix)."""
    dlq_topic: str
    """Dead-letter topic it was read from (its full name, with the deployment's prefix)."""
    dlq_partition: int
    """Partition of the dead-letter topic."""
    dlq_offset: int
    """Offset in that partition."""
    key: str | None
    """Message key (the symbol for pipeline events)."""
    event_type: str | None
    """Event type, when the record parsed as an envelope."""
    run_id: str | None
    """Run the event belongs to, when it parsed."""
    symbol: str | None
    """Symbol the event is about, when it parsed."""
    error: str
    """The handler's last error, as the bus recorded it."""
    attempts: int
    """Handler attempts before dead-lettering (0: the record could not be read)."""
    failed_at: dt.datetime | None
    """When the bus dead-lettered it."""
    recorded_at: dt.datetime
    """When the orchestrator indexed it."""
    replayed_at: dt.datetime | None
    """When it was last replayed, if ever."""
    replayed_by: str | None
    """Name of the key that replayed it."""
    value: str
    """The record's bytes as text (undecodable bytes replaced), at most 4,000 characters."""

    @field_validator("value", mode="before")
    @classmethod
    def _preview(cls, value: object) -> object:
        if isinstance(value, bytes):
            return value.decode(errors="replace")[:VALUE_PREVIEW_CHARS]
        return value


class DeadLetterPage(BaseModel):
    """One page of dead letters, newest first."""

    items: list[DeadLetterRead]
    """The page's dead letters."""
    next_cursor: str | None
    """Pass as `cursor` for the next page; null on the last page."""


class DeadLetterReplay(BaseModel):
    """Which dead letters to republish to their original topic, and why: exactly one of `ids`
    and `run_id`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"run_id": "3f2a...", "reason": "object restored"}],
            # The rule `_one_selection` enforces, as JSON Schema states it.
            "oneOf": [
                {"required": ["ids"], "properties": {"ids": {"type": "array"}}},
                {"required": ["run_id"], "properties": {"run_id": {"type": "string"}}},
            ],
        },
    )

    ids: list[RowId] | None = Field(default=None, min_length=1, max_length=10_000)
    """Dead letters by id; give exactly one of this and `run_id`."""
    run_id: str | None = Field(default=None, min_length=1, max_length=36)
    """Every dead letter of a run; give exactly one of this and `ids`."""
    reason: str = Field(min_length=1, max_length=2000)
    """Why, for the audit log."""
    force: bool = False
    """Replay records that were replayed before, too."""

    @model_validator(mode="after")
    def _one_selection(self) -> DeadLetterReplay:
        if (self.ids is None) == (self.run_id is None):
            raise ValueError("give exactly one of ids and run_id")
        return self


class SkippedDeadLetter(BaseModel):
    """A selected dead letter that was not replayed."""

    id: int
    """Its id."""
    reason: str
    """Why it was skipped."""


class ReplayRead(BaseModel):
    """What a replay republished and what it skipped."""

    replayed: list[DeadLetterRead]
    """Records republished to their original topic."""
    skipped: list[SkippedDeadLetter]
    """Records left alone (already replayed, without `force`)."""
