"""Request metrics keep a bounded set of series: a client inventing methods adds none."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from marketsense.common.app import create_app
from marketsense.common.metrics import HTTP_METHODS, method_label
from marketsense.common.runtime import Runtime
from marketsense.common.settings import CommonSettings


@pytest.mark.parametrize("method", sorted(HTTP_METHODS))
def test_a_standard_method_is_its_own_label(method: str) -> None:
    assert method_label(method) == method


@pytest.mark.parametrize("method", ["H4M1", "get", "PROPFIND", "X" * 200, ""])
def test_any_other_method_is_labelled_other(method: str) -> None:
    assert method_label(method) == "other"


async def test_made_up_methods_do_not_grow_the_metrics_page(tmp_path: Path) -> None:
    runtime = Runtime(CommonSettings(home=tmp_path / "home"), service="methods-test")
    app = create_app(runtime, [], title="methods test")
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api,
    ):
        await api.request("H4M0", "/nope")
        before = (await api.get("/metrics")).text
        for n in range(1, 200):
            await api.request(f"H4M{n}", "/nope")
        after = (await api.get("/metrics")).text

    assert "H4M" not in after
    assert 'method="other",route="unmatched",service="methods-test",status="401"' in after
    # The 199 requests moved counts only: every series they touched existed before them.
    assert _unmatched_series(after) == _unmatched_series(before)


def _unmatched_series(page: str) -> set[str]:
    """The label sets of the metrics page's series for unmatched paths, without their values."""
    return {line.rsplit(" ", 1)[0] for line in page.splitlines() if 'route="unmatched"' in line}
