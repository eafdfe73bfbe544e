"""Build the configured source from settings."""

from __future__ import annotations

import logging

from marketsense.common.calendar import exchange_calendar
from marketsense.ingestion.config import IngestionSettings
from marketsense.ingestion.sources.base import Source
from marketsense.ingestion.sources.checks import BarChecks, CheckLimits
from marketsense.ingestion.sources.files import FileSource
from marketsense.ingestion.sources.http import (
    HttpSource,
    RetryPolicy,
    RssSource,
    TextsSource,
    XRecentSearchSource,
    YahooChartSource,
)
from marketsense.ingestion.sources.simulated import SimulatedMarket

log = logging.getLogger(__name__)


def simulated_market(settings: IngestionSettings) -> SimulatedMarket:
    """The simulated market with the settings' seed and knobs."""
    return SimulatedMarket(
        seed=settings.market_seed,
        sectors=settings.market_sectors,
        text_signal_strength=settings.text_signal_strength,
        regime_change=settings.regime_change,
        regime_signal_factor=settings.regime_signal_factor,
        fail_symbols=settings.fail_symbols,
        unavailable_symbols=settings.unavailable_symbols,
        transient_failure_rate=settings.transient_failure_rate,
    )


def bar_checks(settings: IngestionSettings) -> BarChecks:
    """The checks of fetched bars, on the settings' exchange calendar and thresholds."""
    return BarChecks(
        calendar=exchange_calendar(settings.exchange),
        limits=CheckLimits(
            jump_deviations=settings.check_jump_deviations,
            flat_sessions=settings.check_flat_sessions,
            volume_sessions=settings.check_volume_sessions,
        ),
        fail_on_split=settings.check_fail_on_split,
    )


def build_source(settings: IngestionSettings) -> Source:
    """The source `settings.source` names; an incomplete configuration raises ValueError."""
    if settings.source == "simulated":
        return simulated_market(settings)
    if settings.source == "files":
        if settings.files_root is None:
            raise ValueError("MARKETSENSE_SOURCE=files needs MARKETSENSE_FILES_ROOT")
        if not (settings.files_root / "bars").is_dir():
            raise ValueError(f"MARKETSENSE_FILES_ROOT has no bars folder: {settings.files_root}")
        return FileSource(settings.files_root, calendar=exchange_calendar(settings.exchange))
    policy = RetryPolicy(
        max_attempts=settings.http_max_attempts,
        backoff_base_seconds=settings.http_backoff_base_seconds,
        max_wait_seconds=settings.http_max_wait_seconds,
        timeout_seconds=settings.http_timeout_seconds,
    )
    calendar = exchange_calendar(settings.exchange)
    texts: list[TextsSource] = []
    if settings.x_bearer_token is not None:
        texts.append(
            XRecentSearchSource(
                settings.x_base_url,
                bearer_token=settings.x_bearer_token,
                max_pages=settings.x_max_pages,
                policy=policy,
                calendar=calendar,
            )
        )
    if settings.rss_url_template is not None:
        texts.append(RssSource(settings.rss_url_template, policy=policy, calendar=calendar))
    if not texts:
        log.warning(
            "the http source has no text source (set MARKETSENSE_X_BEARER_TOKEN or "
            "MARKETSENSE_RSS_URL_TEMPLATE): runs get bars only"
        )
    bars = YahooChartSource(settings.yahoo_base_url, policy=policy, calendar=calendar)
    return HttpSource(bars=bars, texts=texts)
