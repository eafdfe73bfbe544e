"""Deduplication through the `alerts` table, and an alerter that keeps going when sinks or the
database fail."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from werkzeug import Request, Response

from marketsense.common.alerts import (
    Alerter,
    AlertSettings,
    JsonWebhookSink,
    SlackWebhookSink,
    SmtpSink,
    alerter_from_settings,
)
from marketsense.common.db.engine import Database
from marketsense.common.db.models import AlertRecord
from tests.behaviour.common.alerts.alert_support import (
    HOOK_PATH,
    SLACK_PATH,
    START,
    Clock,
    Collector,
    alert,
    counted,
    refused_url,
)


async def test_repeat_within_window_is_counted_not_sent_and_sent_again_after_it(
    database: Database, httpserver: HTTPServer
) -> None:
    httpserver.expect_request(HOOK_PATH, method="POST").respond_with_data("ok")
    clock = Clock()
    alerter = Alerter(
        database,
        [JsonWebhookSink(httpserver.url_for(HOOK_PATH))],
        service="orchestrator",
        dedupe_window=dt.timedelta(minutes=60),
        clock=clock,
    )
    deduplicated_before = counted("critical", "deduplicated")

    assert await alerter.notify(alert()) is True
    clock.now = START + dt.timedelta(minutes=59)
    assert await alerter.notify(alert()) is False
    assert len(httpserver.log) == 1
    assert counted("critical", "deduplicated") == deduplicated_before + 1

    clock.now = START + dt.timedelta(minutes=61)
    assert await alerter.notify(alert()) is True

    assert len(httpserver.log) == 2
    resent = json.loads(httpserver.log[1][0].data)
    assert resent["count"] == 3
    assert resent["first_at"] == START.isoformat()
    async with database.session() as session:
        record = await session.scalar(select(AlertRecord))
    assert record is not None
    assert (record.dedupe_key, record.count) == ("run-ended:r1", 3)


async def test_different_keys_are_not_deduplicated(
    database: Database, httpserver: HTTPServer
) -> None:
    httpserver.expect_request(HOOK_PATH, method="POST").respond_with_data("ok")
    alerter = Alerter(
        database, [JsonWebhookSink(httpserver.url_for(HOOK_PATH))], service="o", clock=Clock()
    )

    assert await alerter.notify(alert("dead-letter:raw.ready:r1:AAPL", "warning")) is True
    assert await alerter.notify(alert("dead-letter:raw.ready:r1:MSFT", "warning")) is True

    keys = [json.loads(request.data)["key"] for request, _ in httpserver.log]
    assert keys == ["dead-letter:raw.ready:r1:AAPL", "dead-letter:raw.ready:r1:MSFT"]


async def test_a_sink_that_is_down_does_not_stop_the_others_nor_leak_its_url(
    database: Database,
    httpserver: HTTPServer,
    smtp: tuple[Collector, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    collector, port = smtp
    down = refused_url()
    httpserver.expect_request(SLACK_PATH, method="POST").respond_with_response(
        Response("no", status=500)
    )
    alerter = Alerter(
        database,
        [
            JsonWebhookSink(down),
            SlackWebhookSink(httpserver.url_for(SLACK_PATH)),
            SmtpSink(
                host="127.0.0.1",
                port=port,
                sender="a@example.test",
                recipients=["b@example.test"],
                starttls=False,
            ),
        ],
        service="orchestrator",
        retry_base_seconds=0.01,
        clock=Clock(),
    )

    assert await alerter.notify(alert()) is True

    assert len(collector.messages) == 1
    assert len(httpserver.log) == 3, "the failing Slack hook is retried, then given up"
    assert "not sent to webhook" in caplog.text
    assert "not sent to slack: WebhookRejected: the webhook answered HTTP 500" in caplog.text
    # The receiver's own access log prints its paths; every other logger must not.
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name != "werkzeug")
    assert "POST" in ours, "httpx logged the requests, so redaction was exercised"
    for secret in ("refused-secret", "slack-token-xyz"):
        assert secret not in ours


async def test_when_every_sink_fails_notify_returns_and_the_next_call_tries_again(
    database: Database, httpserver: HTTPServer
) -> None:
    failing = {"on": True}

    def answer(request: Request) -> Response:
        return Response("down", status=503) if failing["on"] else Response("ok")

    httpserver.expect_request(HOOK_PATH, method="POST").respond_with_handler(answer)
    alerter = Alerter(
        database,
        [JsonWebhookSink(httpserver.url_for(HOOK_PATH))],
        service="orchestrator",
        attempts=2,
        retry_base_seconds=0.01,
        clock=Clock(),
    )
    failed_before = counted("critical", "failed")

    assert await alerter.notify(alert()) is False
    assert counted("critical", "failed") == failed_before + 1

    failing["on"] = False
    assert await alerter.notify(alert()) is True
    assert len(httpserver.log) == 3


async def test_without_sinks_the_alert_is_logged_and_counted(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    alerter = alerter_from_settings(AlertSettings(), database=database, service="orchestrator")
    before = counted("warning", "unconfigured")

    assert await alerter.notify(alert("stuck-run:r9", "warning")) is False

    assert counted("warning", "unconfigured") == before + 1
    assert "stuck-run:r9" in caplog.text


async def test_racing_replicas_send_an_alert_once(
    database: Database, httpserver: HTTPServer
) -> None:
    httpserver.expect_request(HOOK_PATH, method="POST").respond_with_data("ok")
    clock = Clock()
    replicas = [
        Alerter(
            database, [JsonWebhookSink(httpserver.url_for(HOOK_PATH))], service=name, clock=clock
        )
        for name in ("a", "b", "c")
    ]
    results = await asyncio.gather(*(replica.notify(alert()) for replica in replicas))

    assert sorted(results) == [False, False, True]
    assert len(httpserver.log) == 1


async def test_a_database_that_is_down_does_not_stop_the_alert(
    httpserver: HTTPServer, tmp_path: Any
) -> None:
    httpserver.expect_request(HOOK_PATH, method="POST").respond_with_data("ok")
    # A database without the alerts table: every dedupe query fails.
    broken = Database(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    try:
        alerter = Alerter(
            broken, [JsonWebhookSink(httpserver.url_for(HOOK_PATH))], service="o", clock=Clock()
        )
        assert await alerter.notify(alert()) is True
    finally:
        await broken.dispose()
    assert len(httpserver.log) == 1


@pytest.mark.parametrize(
    ("minutes", "resent_after"),
    [
        pytest.param(5.0, dt.timedelta(minutes=5), id="five-minutes"),
        pytest.param(0.0, dt.timedelta(0), id="no-window"),
    ],
)
async def test_the_settings_window_decides_when_a_repeat_is_sent_again(
    database: Database, httpserver: HTTPServer, minutes: float, resent_after: dt.timedelta
) -> None:
    httpserver.expect_request(HOOK_PATH, method="POST").respond_with_data("ok")
    clock = Clock()
    settings = AlertSettings(
        alert_webhook_url=httpserver.url_for(HOOK_PATH), alert_dedupe_minutes=minutes
    )
    alerter = alerter_from_settings(settings, database=database, service="o", clock=clock)

    assert await alerter.notify(alert()) is True
    if resent_after:
        clock.now = START + resent_after - dt.timedelta(seconds=1)
        assert await alerter.notify(alert()) is False
    clock.now = START + resent_after
    assert await alerter.notify(alert()) is True

    assert len(httpserver.log) == 2
