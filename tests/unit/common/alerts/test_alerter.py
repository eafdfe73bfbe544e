"""Which sinks alert settings build, in which order, with which secrets kept out of logs."""

from __future__ import annotations

from pydantic import SecretStr

from marketsense.common.alerts import (
    AlertSettings,
    JsonWebhookSink,
    SlackWebhookSink,
    SmtpSink,
)
from marketsense.common.alerts.alerter import sinks_from_settings

SLACK_URL = "https://hooks.slack.example/services/T000/B000/slack-token"
HOOK_URL = "https://alerts.example/hooks/hook-token"


def test_no_settings_build_no_sinks() -> None:
    assert sinks_from_settings(AlertSettings()) == []


def test_every_configured_sink_is_built_in_the_order_slack_webhook_email() -> None:
    settings = AlertSettings(
        alert_slack_webhook_url=SecretStr(SLACK_URL),
        alert_webhook_url=SecretStr(HOOK_URL),
        alert_smtp_host="smtp.example",
        alert_smtp_password=SecretStr("smtp-pass"),
        alert_smtp_username="alerts",
        alert_email_to="oncall@example.test",
    )

    sinks = sinks_from_settings(settings)

    assert [type(sink) for sink in sinks] == [SlackWebhookSink, JsonWebhookSink, SmtpSink]
    assert [sink.secrets() for sink in sinks] == [(SLACK_URL,), (HOOK_URL,), ("smtp-pass",)]


def test_recipients_are_split_on_commas_and_blanks_are_dropped() -> None:
    settings = AlertSettings(
        alert_smtp_host="smtp.example",
        alert_smtp_port=2525,
        alert_smtp_starttls=False,
        alert_email_from="ms@example.test",
        alert_email_to=" oncall@example.test,, lead@example.test , ",
    )

    [sink] = sinks_from_settings(settings)

    assert isinstance(sink, SmtpSink)
    assert sink.recipients == ["oncall@example.test", "lead@example.test"]
    assert (sink.host, sink.port, sink.starttls, sink.sender) == (
        "smtp.example",
        2525,
        False,
        "ms@example.test",
    )
    assert (sink.username, sink.secrets()) == (None, ())


def test_email_needs_both_a_server_and_a_recipient() -> None:
    without_recipients = AlertSettings(alert_smtp_host="smtp.example", alert_email_to=" , ")
    without_server = AlertSettings(alert_email_to="oncall@example.test")

    assert sinks_from_settings(without_recipients) == []
    assert sinks_from_settings(without_server) == []
