"""Deduplicates alerts through the `alerts` table and hands each new one to every sink."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from tenacity import AsyncRetrying, stop_after_attempt, wait_exponential

from marketsense.common.alerts.model import Alert, Delivery
from marketsense.common.alerts.settings import AlertSettings
from marketsense.common.alerts.sinks import AlertSink, JsonWebhookSink, SlackWebhookSink, SmtpSink
from marketsense.common.clock import Clock, utc_now
from marketsense.common.db.engine import Database
from marketsense.common.db.models import AlertRecord
from marketsense.common.metrics import ALERTS

log = logging.getLogger(__name__)


class Alerter:
    """Sends an alert to every sink unless the same key was sent within the dedupe window.

    The `alerts` row is the lock: its unique key admits one first insert, and an UPDATE that
    only matches when the last send is older than the window admits one re-send, so replicas
    racing on the same alert send it once.
    """

    def __init__(
        self,
        database: Database,
        sinks: Sequence[AlertSink],
        *,
        service: str,
        dedupe_window: dt.timedelta = dt.timedelta(minutes=60),
        attempts: int = 3,
        retry_base_seconds: float = 0.2,
        clock: Clock = utc_now,
    ):
        self.database = database
        self.sinks = list(sinks)
        self.service = service
        self.dedupe_window = dedupe_window
        self.attempts = attempts
        self.retry_base_seconds = retry_base_seconds
        self.clock = clock

    async def notify(self, alert: Alert) -> bool:
        """Send an alert now (True), or only count it if it was sent recently (False).

        Never raises: a sink or database that is down is logged and counted.
        """
        now = self.clock()
        try:
            delivery = await self._claim(alert, now)
        except Exception as exc:
            # Without the table there is no dedupe; an alert sent twice beats one lost.
            log.warning("alert dedupe unavailable (%s); sending %s", type(exc).__name__, alert.key)
            delivery = Delivery(alert, first_at=now, count=1, service=self.service)
        if delivery is None:
            ALERTS.labels(alert.severity, "deduplicated").inc()
            log.info("alert %s deduplicated", alert.key)
            return False
        if not self.sinks:
            ALERTS.labels(alert.severity, "unconfigured").inc()
            log.warning("alert (no sink configured) %s: %s\n%s", alert.key, alert.title, alert.text)
            return False
        sent = 0
        for sink in self.sinks:
            sent += await self._send(sink, delivery)
        if sent == 0:
            ALERTS.labels(alert.severity, "failed").inc()
            await self._release(alert, now)
            return False
        ALERTS.labels(alert.severity, "sent").inc()
        log.info("alert %s sent to %d sink(s)", alert.key, sent)
        return True

    async def _claim(self, alert: Alert, now: dt.datetime) -> Delivery | None:
        """Record the alert; a Delivery if this call won the right to send it, else None."""
        try:
            async with self.database.session() as session:
                session.add(
                    AlertRecord(
                        dedupe_key=alert.key,
                        severity=alert.severity,
                        title=alert.title,
                        text=alert.text,
                        first_at=now,
                        last_at=now,
                        sent_at=now,
                        count=1,
                    )
                )
                await session.commit()
            return Delivery(alert, first_at=now, count=1, service=self.service)
        except IntegrityError:
            pass
        cutoff = now - self.dedupe_window
        key = AlertRecord.dedupe_key == alert.key
        async with self.database.session() as session:
            claimed = await session.execute(
                update(AlertRecord)
                .where(key, (AlertRecord.sent_at.is_(None)) | (AlertRecord.sent_at <= cutoff))
                .values(
                    severity=alert.severity,
                    title=alert.title,
                    text=alert.text,
                    last_at=now,
                    sent_at=now,
                    count=AlertRecord.count + 1,
                )
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                await session.execute(
                    update(AlertRecord)
                    .where(key)
                    .values(last_at=now, count=AlertRecord.count + 1)
                    .execution_options(synchronize_session=False)
                )
                await session.commit()
                return None
            first_at, count = (
                await session.execute(select(AlertRecord.first_at, AlertRecord.count).where(key))
            ).one()
            await session.commit()
        return Delivery(alert, first_at=first_at, count=count, service=self.service)

    async def _release(self, alert: Alert, sent_at: dt.datetime) -> None:
        """Give up a claim whose sends all failed, so the next notify tries again."""
        try:
            async with self.database.session() as session:
                await session.execute(
                    update(AlertRecord)
                    .where(AlertRecord.dedupe_key == alert.key, AlertRecord.sent_at == sent_at)
                    .values(sent_at=None)
                    .execution_options(synchronize_session=False)
                )
                await session.commit()
        except Exception as exc:
            log.warning("could not release alert %s: %s", alert.key, type(exc).__name__)

    async def _send(self, sink: AlertSink, delivery: Delivery) -> bool:
        """Send through one sink with a few quick retries; False (logged) if it stays down."""
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.attempts),
                wait=wait_exponential(multiplier=self.retry_base_seconds, max=5),
                reraise=True,
            ):
                with attempt:
                    await sink.send(delivery)
        except Exception as exc:
            log.warning(
                "alert %s not sent to %s: %s",
                delivery.alert.key,
                sink.name,
                _redacted(f"{type(exc).__name__}: {exc}", sink.secrets()),
            )
            return False
        return True


def _redacted(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def sinks_from_settings(settings: AlertSettings) -> list[AlertSink]:
    """Every sink the settings configure, in the order Slack, webhook, email."""
    sinks: list[AlertSink] = []
    if settings.alert_slack_webhook_url is not None:
        sinks.append(SlackWebhookSink(settings.alert_slack_webhook_url.get_secret_value()))
    if settings.alert_webhook_url is not None:
        sinks.append(JsonWebhookSink(settings.alert_webhook_url.get_secret_value()))
    recipients = [r.strip() for r in settings.alert_email_to.split(",") if r.strip()]
    if settings.alert_smtp_host and recipients:
        password = settings.alert_smtp_password
        sinks.append(
            SmtpSink(
                host=settings.alert_smtp_host,
                port=settings.alert_smtp_port,
                sender=settings.alert_email_from,
                recipients=recipients,
                starttls=settings.alert_smtp_starttls,
                username=settings.alert_smtp_username,
                password=password.get_secret_value() if password is not None else None,
            )
        )
    return sinks


def alerter_from_settings(
    settings: AlertSettings, *, database: Database, service: str, clock: Clock = utc_now
) -> Alerter:
    """An alerter with the sinks and dedupe window the settings choose."""
    return Alerter(
        database,
        sinks_from_settings(settings),
        service=service,
        dedupe_window=dt.timedelta(minutes=settings.alert_dedupe_minutes),
        clock=clock,
    )
