"""Where alerts go: a Slack incoming webhook, a generic JSON webhook, or email over SMTP."""

from __future__ import annotations

import abc
import asyncio
import logging
import smtplib
from email.message import EmailMessage

import httpx

from marketsense.common.alerts.model import Delivery

HTTP_TIMEOUT_SECONDS = 10.0


class AlertSink(abc.ABC):
    """Delivers one alert somewhere; raises if it could not."""

    name: str

    @abc.abstractmethod
    async def send(self, delivery: Delivery) -> None:
        """Deliver an alert, or raise."""

    def secrets(self) -> tuple[str, ...]:
        """Strings that must never appear in logs (webhook URLs, passwords)."""
        return ()


class _WebhookSink(AlertSink):
    """POSTs JSON to a URL that is itself a secret (Slack webhook URLs carry the token)."""

    def __init__(self, url: str):
        self._url = url
        _redact_in_logger("httpx", url)

    async def _post(self, body: dict[str, object]) -> None:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as client:
            response = await client.post(self._url, json=body)
        if response.is_error:
            # Not raise_for_status: its message quotes the URL, which is a secret.
            raise WebhookRejected(f"the webhook answered HTTP {response.status_code}")

    def secrets(self) -> tuple[str, ...]:
        """The URL."""
        return (self._url,)


class WebhookRejected(Exception):
    """A webhook answered with an error status."""


class SlackWebhookSink(_WebhookSink):
    """Posts `*title*` and the text to a Slack incoming webhook."""

    name = "slack"

    async def send(self, delivery: Delivery) -> None:
        """Post the alert as one Slack message."""
        alert = delivery.alert
        await self._post({"text": f"*{alert.title}*\n{alert.text}"})


class JsonWebhookSink(_WebhookSink):
    """Posts the alert as a JSON object (key, severity, title, text, first_at, count, service)."""

    name = "webhook"

    async def send(self, delivery: Delivery) -> None:
        """Post the alert's JSON."""
        await self._post(delivery.as_json())


class SmtpSink(AlertSink):
    """Sends a plain-text email through an SMTP server."""

    name = "email"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        recipients: list[str],
        starttls: bool = True,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ):
        self.host = host
        self.port = port
        self.sender = sender
        self.recipients = recipients
        self.starttls = starttls
        self.username = username
        self._password = password
        self.timeout = timeout

    async def send(self, delivery: Delivery) -> None:
        """Send the alert as one email to every recipient."""
        # smtplib blocks; a thread keeps the event loop serving while the server answers.
        await asyncio.to_thread(self._send_blocking, self.message(delivery))

    def message(self, delivery: Delivery) -> EmailMessage:
        """The email for an alert."""
        alert = delivery.alert
        message = EmailMessage()
        message["Subject"] = f"[marketsense {alert.severity}] {alert.title}"
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message.set_content(
            f"{alert.text}\n\n"
            f"key: {alert.key}\nservice: {delivery.service}\n"
            f"first seen: {delivery.first_at.isoformat()}\ntimes seen: {delivery.count}\n"
        )
        return message

    def _send_blocking(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self._password or "")
            smtp.send_message(message)

    def secrets(self) -> tuple[str, ...]:
        """The password."""
        return (self._password,) if self._password else ()


class _Redact(logging.Filter):
    """Masks secrets in a library logger's records (httpx logs every request's URL)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, None
        return True


_redactors: dict[str, _Redact] = {}


def _redact_in_logger(logger_name: str, secret: str) -> None:
    """Make a library's logger mask `secret` from now on."""
    redactor = _redactors.get(logger_name)
    if redactor is None:
        redactor = _redactors[logger_name] = _Redact()
        logging.getLogger(logger_name).addFilter(redactor)
    redactor.secrets.add(secret)
