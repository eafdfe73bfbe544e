"""Where alerts go and how often one repeats: the settings of the services that send alerts."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class AlertSettings(BaseSettings):
    """Alert sinks and deduplication; mixed into the settings of each service that alerts."""

    model_config = SettingsConfigDict(env_prefix="MARKETSENSE_", extra="ignore")

    alert_slack_webhook_url: SecretStr | None = None
    """Slack incoming-webhook URL that receives alerts; unset means no Slack alerts."""

    alert_webhook_url: SecretStr | None = None
    """URL that receives each alert as a JSON POST; unset means no generic webhook."""

    alert_smtp_host: str | None = None
    """SMTP server that sends alert emails; unset means no email alerts."""

    alert_smtp_port: int = Field(default=587, ge=1, le=65535)
    """Port of the SMTP server."""

    alert_smtp_username: str | None = None
    """SMTP login; unset means the server is used without logging in."""

    alert_smtp_password: SecretStr | None = None
    """SMTP password for `alert_smtp_username`."""

    alert_smtp_starttls: bool = True
    """Upgrade the SMTP connection with STARTTLS before logging in and sending."""

    alert_email_from: str = "marketsense@localhost"
    """Sender address of alert emails."""

    alert_email_to: str = ""
    """Comma-separated recipients of alert emails; empty means no email alerts."""

    alert_dedupe_minutes: float = Field(default=60.0, ge=0)
    """An alert with the same key within this many minutes is counted, not sent again."""
