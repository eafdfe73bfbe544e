"""Alerts for on-call people: one model, sinks for Slack, webhooks and email, and deduplication."""

from marketsense.common.alerts.alerter import Alerter, alerter_from_settings
from marketsense.common.alerts.model import Alert, Delivery, Notifier, Severity
from marketsense.common.alerts.settings import AlertSettings
from marketsense.common.alerts.sinks import AlertSink, JsonWebhookSink, SlackWebhookSink, SmtpSink

__all__ = [
    "Alert",
    "AlertSettings",
    "AlertSink",
    "Alerter",
    "Delivery",
    "JsonWebhookSink",
    "Notifier",
    "Severity",
    "SlackWebhookSink",
    "SmtpSink",
    "alerter_from_settings",
]
