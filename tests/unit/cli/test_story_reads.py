"""The story's reads: every page of a list API, a refusal named, and what `/readyz` serves."""

from __future__ import annotations

import httpx
import pytest

from marketsense.cli.story_reads import StoryRefused, every_item, serves

ALERTS = [{"id": i} for i in range(7, 0, -1)]


def _paged(request: httpx.Request) -> httpx.Response:
    """Alerts newest first, three a page, the cursor the last id shown (as monitoring pages)."""
    if request.url.path == "/v1/retrains":
        return httpx.Response(200, json=[{"id": "a"}, {"id": "b"}])
    if request.url.path == "/v1/challenges":
        return httpx.Response(404, json={"detail": "Not Found"})
    if request.url.path == "/v1/broken":
        return httpx.Response(422, json={"detail": "limit: must be at most 500"})
    before = int(request.url.params.get("cursor", 99))
    page = [a for a in ALERTS if a["id"] < before][:3]
    more = page and page[-1]["id"] > 1
    return httpx.Response(
        200, json={"items": page, "next_cursor": str(page[-1]["id"]) if more else None}
    )


async def test_every_item_follows_the_cursor_takes_a_list_whole_and_reads_404_as_none() -> None:
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(_paged), base_url="http://x"
    ) as client:
        alerts = await every_item(client, "/v1/decay-alerts", {"model": "m"})
        retrains = await every_item(client, "/v1/retrains")
        challenges = await every_item(client, "/v1/challenges")
        with pytest.raises(StoryRefused, match=r"GET /v1/broken: 422 limit: must be at most 500"):
            await every_item(client, "/v1/broken")

    assert alerts == ALERTS
    assert retrains == [{"id": "a"}, {"id": "b"}]
    assert challenges == []


def test_serves_matches_the_model_and_version_a_process_answers_with_not_a_shadow() -> None:
    body = {
        "ready": True,
        "serving": [
            {"model": "sentiment", "version": "2", "variant": "int8"},
            {"model": "baseline-predictor", "version": "3", "variant": "fp32"},
            {"model": "baseline-predictor", "version": "4", "alias": "challenger"},
        ],
    }
    assert serves(body, "baseline-predictor", "3")
    assert not serves(body, "baseline-predictor", "4")
    assert not serves(body, "baseline-predictor", "2")
    assert not serves(body, "other", "3")
    assert not serves({"ready": False}, "baseline-predictor", "3")
