"""Alert sinks against a local HTTP receiver and a local SMTP server, and deduplication."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import socket
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from prometheus_client import REGISTRY
from pydantic import SecretStr
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from werkzeug import Request, Response

from marketsense.common.alerts import (
    Alert,
    Alerter,
    AlertSettings,
    JsonWebhookSink,
    SlackWebhookSink,
    SmtpSink,
    alerter_from_settings,
)
from marketsense.common.db.engine import Database
from marketsense.common.db.models import AlertRecord
from tests.e2e.processes import free_port

START = dt.datetime(2026, 11, 20, 21, 30, tzinfo=dt.UTC)
SLACK_PATH = "/services/T000/B000/slack-token-xyz"
HOOK_PATH = "/hooks/secret-token-abc"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now


class Collector:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Collector, int]]:
    """A plain SMTP server on loopback (no TLS, no login), collecting what it receives."""
    collector = Collector()
    port = free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield collector, port
    finally:
        controller.stop()


def alert(key: str = "run-ended:r1", severity: str = "critical") -> Alert:
    """An alert as the orchestrator would raise it."""
    return Alert.model_validate(
        {
            "key": key,
            "severity": severity,
            "title": "Run r1 ended PARTIAL",
            "text": "AAPL failed in ingest after 3 attempts.\nRetry: marketsense run retry r1",
        }
    )


def counted(severity: str, outcome: str) -> float:
    """The alerts counter's current value."""
    value = REGISTRY.get_sample_value(
        "marketsense_alerts_total", {"severity": severity, "outcome": outcome}
    )
    return value or 0.0


def refused_url() -> str:
    """A loopback URL nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks/refused-secret"


async def test_slack_and_webhook_receive_the_alert(
    database: Database, httpserver: HTTPServer
) -> None:
    httpserver.expect_oneshot_request(SLACK_PATH, method="POST").respond_with_data("ok")
    httpserver.expect_oneshot_request(HOOK_PATH, method="POST").respond_with_data("ok")
    alerter = Alerter(
        database,
        [
            SlackWebhookSink(httpserver.url_for(SLACK_PATH)),
            JsonWebhookSink(httpserver.url_for(HOOK_PATH)),
        ],
        service="orchestrator",
        clock=Clock(),
    )

    assert await alerter.notify(alert()) is True

    httpserver.check_assertions()
    slack, hook = (json.loads(request.data) for request, _ in httpserver.log)
    assert slack == {
        "text": "*Run r1 ended PARTIAL*\nAAPL failed in ingest after 3 attempts.\n"
        "Retry: marketsense run retry r1"
    }
    assert hook == {
        "key": "run-ended:r1",
        "severity": "critical",
        "title": "Run r1 ended PARTIAL",
        "text": "AAPL failed in ingest after 3 attempts.\nRetry: marketsense run retry r1",
        "first_at": START.isoformat(),
        "count": 1,
        "service": "orchestrator",
    }


async def test_email_without_starttls_or_login_reaches_the_smtp_server(
    database: Database, smtp: tuple[Collector, int]
) -> None:
    collector, port = smtp
    sink = SmtpSink(
        host="127.0.0.1",
        port=port,
        sender="alerts@example.test",
        recipients=["oncall@example.test", "lead@example.test"],
        starttls=False,
    )
    alerter = Alerter(database, [sink], service="orchestrator", clock=Clock())

    assert await alerter.notify(alert()) is True

    (message,) = collector.messages
    assert message["Subject"] == "[marketsense critical] Run r1 ended PARTIAL"
    assert message["From"] == "alerts@example.test"
    assert message["To"] == "oncall@example.test, lead@example.test"
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes)
    assert "Retry: marketsense run retry r1" in body.decode()
    assert "key: run-ended:r1" in body.decode()


async def test_email_with_login_authenticates_with_the_configured_user(
    database: Database,
) -> None:
    collector = Collector()
    logins: list[tuple[str, str]] = []

    def authenticate(
        server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        logins.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=auth_data.password == b"s3cret-pass")

    port = free_port()
    # Login over plain text is what this local server allows; production uses STARTTLS.
    controller = Controller(
        collector,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        settings = AlertSettings(
            alert_smtp_host="127.0.0.1",
            alert_smtp_port=port,
            alert_smtp_username="alerts",
            alert_smtp_password=SecretStr("s3cret-pass"),
            alert_smtp_starttls=False,
            alert_email_to="oncall@example.test",
        )
        alerter = alerter_from_settings(settings, database=database, service="orchestrator")
        assert await alerter.notify(alert()) is True
    finally:
        controller.stop()

    assert logins == [("alerts", "s3cret-pass")]
    assert len(collector.messages) == 1


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
