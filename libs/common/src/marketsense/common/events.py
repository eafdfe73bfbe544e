"""Event envelope and typed payloads; events carry references or keys, never data sets."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from marketsense.common.errors import NonRetryableError

ENVELOPE_SCHEMA_VERSION = 1


class ObjectRef(BaseModel):
    """A reference to one object in the object store."""

    model_config = ConfigDict(frozen=True)

    uri: str
    """Where the object lives: `s3://bucket/key` or `file:///path`."""
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    """Hex SHA-256 of the object's bytes; readers verify it."""
    size: int = Field(ge=0)
    """Size of the object in bytes."""


class Payload(BaseModel):
    """Base class of every event payload."""

    model_config = ConfigDict(extra="forbid")

    event_type: ClassVar[str]
    topic: ClassVar[str]
    schema_version: ClassVar[int] = 1
    description: ClassVar[str]


class IngestRequested(Payload):
    """The orchestrator asks ingestion to fetch one symbol's data for a run."""

    event_type: ClassVar[str] = "ingest.requested"
    topic: ClassVar[str] = "ingest.requested"
    description: ClassVar[str] = "A run needs one symbol's raw data; keyed by symbol."

    as_of: dt.date
    """Trading day the run is for."""
    lookback_days: int = Field(ge=1)
    """Trading days of history to fetch before the first day the run produces features for."""
    start: dt.date | None = None
    """First trading day of a backfill (its features, texts and predictions run from here to
    `as_of`); None for a daily run, which is for `as_of` alone."""


class RawDataReady(Payload):
    """Ingestion stored one symbol's raw data for a run."""

    event_type: ClassVar[str] = "raw.ready"
    topic: ClassVar[str] = "raw.ready"
    description: ClassVar[str] = "Raw daily bars and texts for one symbol are in the object store."

    as_of: dt.date
    """Trading day the run is for."""
    bars: ObjectRef
    """Parquet file of daily bars."""
    rows: int = Field(ge=0)
    """Number of bars in the file."""
    texts: ObjectRef | None = None
    """Parquet file of the text items (news, posts) of the same days, if any were fetched."""
    text_items: int = Field(default=0, ge=0)
    """Number of text items in that file."""
    start: dt.date | None = None
    """First trading day of a backfill, as in its `ingest.requested`; None for a daily run."""


class FeaturesReady(Payload):
    """Processing stored one symbol's feature row for a run."""

    event_type: ClassVar[str] = "features.ready"
    topic: ClassVar[str] = "features.ready"
    description: ClassVar[str] = (
        "Features for one symbol are in the object store and marked processed."
    )

    as_of: dt.date
    """Trading day the features describe."""
    feature_schema: str
    """Name of the feature schema the row follows."""
    features: ObjectRef
    """Parquet file with the feature rows: one per trading day from `start` to `as_of`."""
    start: dt.date | None = None
    """First trading day of a backfill; None for a daily run (one row, for `as_of`)."""
    rows: int = Field(default=1, ge=1)
    """Number of feature rows in the file."""


class PredictionsReady(Payload):
    """Prediction stored one symbol's predictions for a run."""

    event_type: ClassVar[str] = "predictions.ready"
    topic: ClassVar[str] = "predictions.ready"
    description: ClassVar[str] = (
        "A symbol's predictions for a run are stored (one, or one per day of a backfill); "
        "keyed by the database id of the one for `as_of`."
    )

    as_of: dt.date
    """Trading day the prediction was made on (a backfill's last day)."""
    prediction_id: int
    """Primary key of the stored prediction for `as_of`."""
    model_name: str
    """Name of the predictor that scored it."""
    model_version: str
    """Version of the predictor that scored it."""
    start: dt.date | None = None
    """First trading day of a backfill, whose every day from here to `as_of` with features has a
    prediction; None for a daily run."""
    rows: int = Field(default=1, ge=1)
    """Number of predictions stored for the symbol in this run."""


class TaskFailed(Payload):
    """A task gave up; the orchestrator decides what happens to the run."""

    event_type: ClassVar[str] = "task.failed"
    topic: ClassVar[str] = "task.failed"
    description: ClassVar[str] = "A (run, symbol, stage) task failed, with its error and attempts."

    stage: str
    """Stage that failed: ingest, process or predict."""
    error: str
    """What went wrong, for an operator."""
    retryable: bool
    """Whether running the task again could succeed."""
    attempts: int = Field(ge=1)
    """Attempts made so far."""


class RunStateChanged(Payload):
    """A run moved from one state to another."""

    event_type: ClassVar[str] = "run.state-changed"
    topic: ClassVar[str] = "run.state-changed"
    description: ClassVar[str] = "A run changed state; keyed by run id."

    from_state: str
    """State before the change."""
    to_state: str
    """State after the change."""
    as_of: dt.date
    """Trading day of the run."""


class ModelPromoted(Payload):
    """An alias of a registered model moved to another version."""

    event_type: ClassVar[str] = "model.promoted"
    topic: ClassVar[str] = "model.promoted"
    description: ClassVar[str] = "A model alias (such as production) now points at a new version."

    model_name: str
    """Registered model name."""
    alias: str
    """Alias that moved, such as `production`."""
    version: str
    """Version the alias points at now."""
    previous_version: str | None
    """Version the alias pointed at before, if any."""
    manifest: ObjectRef
    """The new version's manifest."""


class RetrainRequested(Payload):
    """Monitoring asks for a challenger model to be trained."""

    event_type: ClassVar[str] = "retrain.requested"
    topic: ClassVar[str] = "retrain.requested"
    description: ClassVar[str] = "Live performance decayed; train a challenger on the given window."

    model_name: str
    """Model to retrain."""
    reason: str
    """Why, in words an operator understands."""
    window_start: dt.date
    """First day of the training window."""
    window_end: dt.date
    """Last day of the training window."""


PAYLOAD_TYPES: dict[str, type[Payload]] = {
    cls.event_type: cls
    for cls in (
        IngestRequested,
        RawDataReady,
        FeaturesReady,
        PredictionsReady,
        TaskFailed,
        RunStateChanged,
        ModelPromoted,
        RetrainRequested,
    )
}


class Envelope(BaseModel):
    """What travels on the bus: routing keys and one typed payload."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    """Unique id of this event; consumers may use it to drop duplicates."""
    type: str
    """Event type, such as `raw.ready`."""
    occurred_at: dt.datetime = Field(default_factory=lambda: dt.datetime.now(dt.UTC))
    """When the event happened (UTC)."""
    run_id: str | None = None
    """Run the event belongs to, if any."""
    symbol: str | None = None
    """Stock symbol the event is about, if any; it is also the message key."""
    schema_version: int = ENVELOPE_SCHEMA_VERSION
    """Version of the payload's schema."""
    payload: dict[str, Any]
    """The typed payload, as JSON."""

    @classmethod
    def wrap(
        cls, payload: Payload, *, run_id: str | None = None, symbol: str | None = None
    ) -> Envelope:
        """Wrap a payload in a new envelope."""
        return cls(
            type=payload.event_type,
            run_id=run_id,
            symbol=symbol,
            schema_version=payload.schema_version,
            payload=payload.model_dump(mode="json"),
        )

    @property
    def key(self) -> str | None:
        """Message key: the symbol, else the run, so one stock stays on one partition."""
        return self.symbol or self.run_id

    def to_bytes(self) -> bytes:
        """Serialise to UTF-8 JSON."""
        return self.model_dump_json().encode()

    def typed(self) -> Payload:
        """The payload as its typed model."""
        return PAYLOAD_TYPES[self.type].model_validate(self.payload)


class UnreadableEvent(NonRetryableError):
    """An event that cannot be parsed, has an unknown type or an unsupported version."""


def parse_event(raw: bytes) -> tuple[Envelope, Payload]:
    """Parse bytes into an envelope and its typed payload, or raise UnreadableEvent."""
    try:
        envelope = Envelope.model_validate_json(raw)
    except ValidationError as exc:
        if exc.errors()[0]["type"] == "json_invalid":
            raise UnreadableEvent(f"not JSON: {_brief(exc)}") from exc
        raise UnreadableEvent(f"not an event envelope: {_brief(exc)}") from exc
    payload_type = PAYLOAD_TYPES.get(envelope.type)
    if payload_type is None:
        raise UnreadableEvent(f"unknown event type {envelope.type!r}")
    if envelope.schema_version != payload_type.schema_version:
        raise UnreadableEvent(
            f"{envelope.type} schema version {envelope.schema_version} is not supported "
            f"(this consumer reads version {payload_type.schema_version})"
        )
    try:
        payload = payload_type.model_validate(envelope.payload)
    except ValidationError as exc:
        raise UnreadableEvent(f"bad {envelope.type} payload: {_brief(exc)}") from exc
    return envelope, payload


def _brief(exc: ValidationError) -> str:
    """The first validation error in one line."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(root)"
    return f"{where}: {first['msg']}"
