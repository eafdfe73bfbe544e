"""An alert's limits, and the JSON body a delivery becomes for the generic webhook."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from pydantic import ValidationError

from marketsense.common.alerts import Alert, Delivery

NEW_YORK_CLOSE = dt.datetime(2026, 11, 20, 16, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))


def stuck_run() -> Alert:
    """A warning with a multi-line text, as the reaper raises it."""
    return Alert(
        key="stuck-run:r9",
        severity="warning",
        title="Run r9 has made no progress for 30 minutes",
        text="3 tasks RUNNING since 21:00 UTC.\nCancel: marketsense run cancel r9 — or wait",
    )


def test_delivery_as_json_carries_every_field_of_the_alert_and_the_delivery() -> None:
    delivery = Delivery(stuck_run(), first_at=NEW_YORK_CLOSE, count=4, service="orchestrator")

    body = delivery.as_json()

    assert body == {
        "key": "stuck-run:r9",
        "severity": "warning",
        "title": "Run r9 has made no progress for 30 minutes",
        "text": "3 tasks RUNNING since 21:00 UTC.\nCancel: marketsense run cancel r9 — or wait",
        "first_at": "2026-11-20T16:00:00-05:00",
        "count": 4,
        "service": "orchestrator",
    }


def test_delivery_as_json_keeps_the_first_time_zone_so_a_reader_can_compare_instants() -> None:
    in_utc = Delivery(stuck_run(), first_at=NEW_YORK_CLOSE.astimezone(dt.UTC), count=1, service="o")
    in_new_york = Delivery(stuck_run(), first_at=NEW_YORK_CLOSE, count=1, service="o")

    utc_text = str(in_utc.as_json()["first_at"])
    new_york_text = str(in_new_york.as_json()["first_at"])

    assert utc_text == "2026-11-20T21:00:00+00:00"
    assert dt.datetime.fromisoformat(utc_text) == dt.datetime.fromisoformat(new_york_text)


def test_delivery_as_json_is_plain_json_text() -> None:
    body = Delivery(stuck_run(), first_at=NEW_YORK_CLOSE, count=1, service="o").as_json()

    assert json.loads(json.dumps(body)) == body


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("key", "", id="empty-key"),
        pytest.param("key", "k" * 256, id="key-longer-than-the-column"),
        pytest.param("severity", "info", id="unknown-severity"),
        pytest.param("severity", "CRITICAL", id="severity-in-capitals"),
    ],
)
def test_alert_refuses_a_key_or_severity_outside_its_limits(field: str, value: str) -> None:
    fields = stuck_run().model_dump() | {field: value}

    with pytest.raises(ValidationError, match=field):
        Alert.model_validate(fields)


def test_alert_key_of_exactly_255_characters_is_accepted() -> None:
    fields = stuck_run().model_dump() | {"key": "k" * 255}

    assert Alert.model_validate(fields).key == "k" * 255
