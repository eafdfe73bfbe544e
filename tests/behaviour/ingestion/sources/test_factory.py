"""Ingestion's source settings from the environment, and the source they build."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from marketsense.ingestion.config import IngestionSettings
from marketsense.ingestion.sources import (
    FileSource,
    HttpSource,
    RssSource,
    SimulatedMarket,
    XRecentSearchSource,
    build_source,
)
from marketsense.ingestion.sources.checks import CheckLimits
from marketsense.ingestion.sources.factory import bar_checks


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No MARKETSENSE_* variable from the surrounding shell leaks into these tests."""
    for name in list(os.environ):
        if name.startswith("MARKETSENSE_"):
            monkeypatch.delenv(name)


def test_the_default_is_the_simulated_market_with_its_knobs_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MARKETSENSE_MARKET_SEED", "11")
    monkeypatch.setenv("MARKETSENSE_TEXT_SIGNAL_STRENGTH", "0.8")
    monkeypatch.setenv("MARKETSENSE_REGIME_CHANGE", "2025-06-30")
    monkeypatch.setenv("MARKETSENSE_REGIME_SIGNAL_FACTOR", "0")
    monkeypatch.setenv("MARKETSENSE_FAIL_SYMBOLS", " aaa, BBB ,")
    monkeypatch.setenv("MARKETSENSE_TRANSIENT_FAILURE_RATE", "0.25")

    source = build_source(IngestionSettings())

    assert isinstance(source, SimulatedMarket)
    assert source.name == "simulated"
    assert source.seed == 11
    assert source.text_signal_strength == 0.8
    assert source.regime_change == dt.date(2025, 6, 30)
    assert source.regime_signal_factor == 0.0
    assert source.fail_symbols == {"AAA", "BBB"}
    assert source.transient_failure_rate == 0.25


def test_fail_symbols_also_read_as_a_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETSENSE_FAIL_SYMBOLS", '["x", "Y"]')
    assert IngestionSettings().fail_symbols == {"X", "Y"}


def test_a_failure_rate_outside_zero_to_one_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETSENSE_TRANSIENT_FAILURE_RATE", "1.5")
    with pytest.raises(ValidationError, match="transient_failure_rate"):
        IngestionSettings()


def test_files_without_a_root_is_an_incomplete_configuration() -> None:
    with pytest.raises(ValueError, match="MARKETSENSE_SOURCE=files needs MARKETSENSE_FILES_ROOT"):
        build_source(IngestionSettings(source="files"))


def test_files_with_a_root_without_bars_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="has no bars folder"):
        build_source(IngestionSettings(source="files", files_root=tmp_path))
    (tmp_path / "bars").mkdir()
    source = build_source(IngestionSettings(source="files", files_root=tmp_path))
    assert isinstance(source, FileSource)
    assert source.root == tmp_path


def test_http_takes_text_sources_from_what_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETSENSE_SOURCE", "http")
    monkeypatch.setenv("MARKETSENSE_X_BEARER_TOKEN", "very-secret")
    monkeypatch.setenv("MARKETSENSE_RSS_URL_TEMPLATE", "https://feeds.example.com/rss?s={symbol}")
    settings = IngestionSettings()

    source = build_source(settings)

    assert isinstance(source, HttpSource)
    assert [type(t) for t in source.texts] == [XRecentSearchSource, RssSource]
    assert "very-secret" not in repr(settings)
    assert "very-secret" not in str(settings.model_dump())


def test_http_without_text_sources_warns_and_serves_bars_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = build_source(IngestionSettings(source="http"))
    assert isinstance(source, HttpSource)
    assert source.texts == ()
    assert "no text source" in caplog.text


def test_an_rss_template_without_the_symbol_is_refused() -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        IngestionSettings(rss_url_template="https://feeds.example.com/rss")


def test_an_unknown_source_is_refused() -> None:
    with pytest.raises(ValidationError, match="source"):
        IngestionSettings(source="ftp")


def test_the_exchange_and_check_thresholds_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "bars").mkdir()
    monkeypatch.setenv("MARKETSENSE_EXCHANGE", "xlon")
    monkeypatch.setenv("MARKETSENSE_CHECK_JUMP_DEVIATIONS", "12.5")
    monkeypatch.setenv("MARKETSENSE_CHECK_FLAT_SESSIONS", "3")
    monkeypatch.setenv("MARKETSENSE_CHECK_VOLUME_SESSIONS", "10")
    monkeypatch.setenv("MARKETSENSE_CHECK_FAIL_ON_SPLIT", "false")
    settings = IngestionSettings(source="files", files_root=tmp_path)

    source = build_source(settings)
    checks = bar_checks(settings)

    assert isinstance(source, FileSource)
    assert source.calendar.name == checks.calendar.name == "XLON"
    assert checks.limits == CheckLimits(jump_deviations=12.5, flat_sessions=3, volume_sessions=10)
    assert checks.fail_on_split is False
    assert IngestionSettings.model_fields["check_fail_on_split"].default is True
    assert IngestionSettings.model_fields["exchange"].default == "XNYS"


def test_an_unknown_exchange_is_refused_naming_the_format(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETSENSE_EXCHANGE", "NYSE")
    with pytest.raises(ValidationError, match="unknown exchange 'NYSE': use an ISO 10383 MIC"):
        IngestionSettings()
