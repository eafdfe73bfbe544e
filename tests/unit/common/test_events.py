"""The event envelope, payload parsing and object references."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from pydantic import ValidationError

from marketsense.common.errors import NonRetryableError
from marketsense.common.events import (
    PAYLOAD_TYPES,
    Envelope,
    FeaturesReady,
    IngestRequested,
    ModelPromoted,
    ObjectRef,
    Payload,
    PredictionsReady,
    RawDataReady,
    RetrainRequested,
    RunStateChanged,
    TaskFailed,
    UnreadableEvent,
    parse_event,
)

AS_OF = dt.date(2026, 11, 20)
REF = ObjectRef(uri="s3://bucket/raw/AAA.parquet", sha256="ab" * 32, size=1234)

# One filled-in example per event type; the test below fails when a type is added without one.
EXAMPLES: dict[str, Payload] = {
    p.event_type: p
    for p in (
        IngestRequested(as_of=AS_OF, lookback_days=60),
        RawDataReady(as_of=AS_OF, bars=REF, rows=60),
        FeaturesReady(as_of=AS_OF, feature_schema="daily-v1", features=REF),
        PredictionsReady(as_of=AS_OF, prediction_id=42, model_name="m", model_version="3"),
        TaskFailed(stage="process", error="boom", retryable=False, attempts=3),
        RunStateChanged(from_state="RUNNING", to_state="SUCCESS", as_of=AS_OF),
        ModelPromoted(
            model_name="m", alias="production", version="3", previous_version=None, manifest=REF
        ),
        RetrainRequested(
            model_name="m",
            reason="accuracy decayed",
            window_start=dt.date(2026, 1, 1),
            window_end=AS_OF,
        ),
    )
}


def envelope_bytes(**overrides: Any) -> bytes:
    """A valid raw.ready envelope as JSON, with some fields replaced."""
    data = json.loads(Envelope.wrap(EXAMPLES["raw.ready"], run_id="r1", symbol="AAA").to_bytes())
    data.update(overrides)
    return json.dumps(data).encode()


def test_every_payload_type_has_an_example() -> None:
    assert set(EXAMPLES) == set(PAYLOAD_TYPES)


@pytest.mark.parametrize("event_type", sorted(PAYLOAD_TYPES))
def test_envelope_round_trip_keeps_routing_fields_and_typed_payload(event_type: str) -> None:
    payload = EXAMPLES[event_type]
    envelope = Envelope.wrap(payload, run_id="run-1", symbol="AAA")

    parsed, typed = parse_event(envelope.to_bytes())

    assert parsed == envelope
    assert type(typed) is PAYLOAD_TYPES[event_type]
    assert typed == payload
    assert parsed.typed() == payload
    assert parsed.type == event_type
    assert parsed.schema_version == PAYLOAD_TYPES[event_type].schema_version


def test_envelope_key_is_the_symbol_else_the_run() -> None:
    payload = EXAMPLES["run.state-changed"]
    assert Envelope.wrap(payload, run_id="r1", symbol="AAA").key == "AAA"
    assert Envelope.wrap(payload, run_id="r1").key == "r1"
    assert Envelope.wrap(payload).key is None


def test_unreadable_event_is_non_retryable() -> None:
    assert issubclass(UnreadableEvent, NonRetryableError)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(b"\xff\xfe not utf-8", "not JSON", id="not-utf8"),
        pytest.param(b"{this is not json", "not JSON", id="not-json"),
        pytest.param(b"[" * 100_000, "not JSON", id="nested-too-deep"),
        pytest.param(b'{"id": ' + b"9" * 5000 + b"}", "not JSON", id="number-too-long"),
        pytest.param(b"[1, 2, 3]", "not an event envelope", id="json-array"),
        pytest.param(b'{"hello": "world"}', "not an event envelope", id="missing-fields"),
        pytest.param(
            envelope_bytes(surprise=True), "not an event envelope: surprise", id="extra-field"
        ),
        pytest.param(
            envelope_bytes(type="weather.changed"),
            "unknown event type 'weather.changed'",
            id="unknown-type",
        ),
        pytest.param(
            envelope_bytes(schema_version=2),
            "raw.ready schema version 2 is not supported (this consumer reads version 1)",
            id="wrong-schema-version",
        ),
        pytest.param(
            envelope_bytes(payload={"as_of": "2026-11-20", "rows": 3}),
            "bad raw.ready payload: bars: Field required",
            id="payload-missing-field",
        ),
        pytest.param(
            envelope_bytes(
                payload={"as_of": "2026-11-20", "rows": -1, "bars": REF.model_dump(mode="json")}
            ),
            "bad raw.ready payload: rows:",
            id="payload-negative-rows",
        ),
        pytest.param(
            envelope_bytes(
                payload={
                    "as_of": "2026-11-20",
                    "rows": 1,
                    "bars": REF.model_dump(mode="json"),
                    "extra": 1,
                }
            ),
            "bad raw.ready payload: extra:",
            id="payload-extra-field",
        ),
    ],
)
def test_parse_event_rejects_unreadable_bytes_with_a_reason(raw: bytes, message: str) -> None:
    with pytest.raises(UnreadableEvent) as caught:
        parse_event(raw)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "sha256",
    [
        pytest.param("", id="empty"),
        pytest.param("ab" * 31, id="too-short"),
        pytest.param("ab" * 33, id="too-long"),
        pytest.param("AB" * 32, id="upper-case"),
        pytest.param("zz" * 32, id="not-hex"),
    ],
)
def test_object_ref_rejects_a_bad_sha256(sha256: str) -> None:
    with pytest.raises(ValidationError, match="sha256"):
        ObjectRef(uri="s3://bucket/key", sha256=sha256, size=1)


def test_object_ref_rejects_a_negative_size() -> None:
    with pytest.raises(ValidationError, match="size"):
        ObjectRef(uri="s3://bucket/key", sha256="ab" * 32, size=-1)
