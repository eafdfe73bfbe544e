"""The chart rendered once for the deploy suites."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.chart_support import EVERYTHING, PROFILES, documents, render_text


# Rendering runs helm four times; the documents are only read, so every suite shares them.
@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """The chart rendered with each profile's values, and with everything optional on."""
    out = {name: documents(render_text(values)) for name, values in PROFILES.items()}
    out["everything"] = documents(render_text(sets=EVERYTHING))
    return out
