"""What the story reads from the services' APIs: every page of a list, the production version's
newest judged day, what a process serves, and each version's daily book."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import httpx
import pandas as pd

from marketsense.common.api_client import error_detail

MAX_PAGES = 100
"""Pages read of one list at most: far more than a year of the story holds."""


class StoryRefused(Exception):
    """A service refused or failed a request the story needs; the message names which."""


def answer(response: httpx.Response, what: str) -> Any:
    """The JSON of a 2xx answer; StoryRefused naming the request and the service's reason."""
    if response.status_code >= 300:
        raise StoryRefused(f"{what}: {response.status_code} {error_detail(response)}")
    return response.json()


async def every_item(
    client: httpx.AsyncClient, path: str, params: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """All items of a list API, following `next_cursor`; a plain JSON list is taken whole; a 404
    (nothing stored yet) is no items."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        query = {**(params or {}), **({"cursor": cursor} if cursor else {})}
        response = await client.get(path, params=query)
        if response.status_code == 404:
            return items
        body = answer(response, f"GET {path}")
        if isinstance(body, list):
            return body
        items.extend(body["items"])
        cursor = body.get("next_cursor")
        if cursor is None:
            return items
    raise StoryRefused(f"GET {path}: more than {MAX_PAGES} pages")


async def newest_judged_day(client: httpx.AsyncClient, model: str) -> dt.date | None:
    """The latest outcome day monitoring judged the model's most recently judged version on."""
    response = await client.get("/v1/performance/daily", params={"model": model, "limit": 1})
    if response.status_code == 404:
        return None
    items = answer(response, "GET /v1/performance/daily")["items"]
    return dt.date.fromisoformat(items[0]["day"]) if items else None


async def production_version(client: httpx.AsyncClient, model: str) -> str | None:
    """The version the registry's `production` alias names now; None when unset."""
    response = await client.get(f"/v1/models/{model}/aliases/production")
    if response.status_code == 404:
        return None
    return str(answer(response, f"GET /v1/models/{model}/aliases/production")["version"])


async def latest_version(client: httpx.AsyncClient, symbol: str) -> str:
    """The model version of the symbol's latest production prediction."""
    body = answer(
        await client.get(f"/v1/predictions/{symbol}/latest"), f"GET latest prediction {symbol}"
    )
    return str(body["model_version"])


def serves(readyz: Mapping[str, Any], model: str, version: str) -> bool:
    """Whether a `/readyz` body lists `model` at `version` as what it answers with; a shadow
    (an entry naming the alias it follows, such as `challenger`) answers nobody."""
    return any(
        str(entry.get("model")) == model
        and str(entry.get("version")) == version
        and entry.get("alias", "production") == "production"
        for entry in readyz.get("serving", [])
    )


async def version_daily(client: httpx.AsyncClient, model: str, version: str) -> pd.DataFrame:
    """A version's daily figures, oldest first (index `day`); empty when it has none."""
    items = await every_item(
        client, "/v1/performance/daily", {"model": model, "version": version, "limit": 500}
    )
    if not items:
        return pd.DataFrame()
    frame = pd.DataFrame(items)
    frame["day"] = [dt.date.fromisoformat(str(d)) for d in frame["day"]]
    numbers = ["ic", "rank_ic", "gross_return", "turnover", "strategy_return", "benchmark_return"]
    return frame.set_index("day").sort_index().astype(dict.fromkeys(numbers, float))
