"""The API's choice of windows and the order of versions, without a database."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketsense.monitoring.queries import WindowNotConfigured, production_first, windows_asked
from tests.monitoring_api_support import monitoring_settings


def test_the_production_version_comes_first_and_the_rest_keep_their_order() -> None:
    aliases = {"3": ["canary"], "2": ["production", "stable"]}
    assert production_first(["4", "3", "2", "1"], aliases) == ["2", "4", "3", "1"]
    assert production_first(["4", "3"], aliases) == ["4", "3"]


def test_windows_are_every_configured_one_or_the_one_asked(tmp_path: Path) -> None:
    settings = monitoring_settings(tmp_path, "sqlite+aiosqlite://", performance_windows=[63, 5])
    assert windows_asked(settings, None) == [5, 63]
    assert windows_asked(settings, 63) == [63]
    with pytest.raises(WindowNotConfigured, match="performance_windows lists 5, 63"):
        windows_asked(settings, 21)
