"""Alert sinks against a local HTTP receiver and a local SMTP server: what each one delivers."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import SecretStr
from pytest_httpserver import HTTPServer

from marketsense.common.alerts import (
    Alerter,
    AlertSettings,
    Delivery,
    JsonWebhookSink,
    SlackWebhookSink,
    SmtpSink,
    alerter_from_settings,
)
from marketsense.common.alerts.sinks import WebhookRejected
from marketsense.common.db.engine import Database
from tests.behaviour.common.alerts.alert_support import (
    HOOK_PATH,
    SLACK_PATH,
    START,
    Clock,
    Collector,
    alert,
)
from tests.e2e.processes import free_port


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


async def test_webhook_answering_an_error_status_raises_without_quoting_its_secret_url(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request(HOOK_PATH, method="POST").respond_with_data("gone", status=404)
    url = httpserver.url_for(HOOK_PATH)
    delivery = Delivery(alert(), first_at=START, count=1, service="orchestrator")

    with pytest.raises(WebhookRejected) as caught:
        await JsonWebhookSink(url).send(delivery)

    assert str(caught.value) == "the webhook answered HTTP 404"
    assert "secret-token-abc" not in repr(caught.value)


def test_email_names_the_severity_the_service_when_it_was_first_seen_and_how_often() -> None:
    sink = SmtpSink(
        host="smtp.example", port=25, sender="ms@example.test", recipients=["a@example.test"]
    )
    later = dt.datetime(2026, 11, 20, 18, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    delivery = Delivery(alert("stuck-run:r9", "warning"), first_at=later, count=7, service="reaper")

    message = sink.message(delivery)

    assert message["Subject"] == "[marketsense warning] Run r1 ended PARTIAL"
    assert message["To"] == "a@example.test"
    assert message.get_content() == (
        "AAPL failed in ingest after 3 attempts.\nRetry: marketsense run retry r1\n\n"
        "key: stuck-run:r9\nservice: reaper\n"
        "first seen: 2026-11-20T18:00:00-05:00\ntimes seen: 7\n"
    )
