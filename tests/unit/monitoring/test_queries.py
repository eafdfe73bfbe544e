"""The API's choice of windows and the order of versions, without a database."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from marketsense.common.db.models import DriftMeasurement
from marketsense.monitoring.queries import (
    WindowNotConfigured,
    drift_cursor,
    drift_position,
    production_first,
    windows_asked,
)
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


def test_a_drift_cursor_names_the_place_it_was_made_at() -> None:
    row = DriftMeasurement(
        as_of=dt.date(2008, 10, 13), run_id="r-1", model_name="m", model_version="3", feature="f"
    )
    assert drift_position(drift_cursor(row)) == (dt.date(2008, 10, 13), "r-1", "m", "3", "f")


@pytest.mark.parametrize("text", ["", "x", "WzFd", "WyIyMDA4LTEzLTAxIiwiYSIsImIiLCJjIiwiZCJd"])
def test_a_drift_cursor_it_did_not_make_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a cursor this API returned"):
        drift_position(text)
