"""Every panel of every Grafana dashboard shows data on a real Prometheus once a short history
has run through the services as processes: a backfill of four weeks, then a daily run."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from marketsense.common.auth import Role
from marketsense.common.calendar import exchange_calendar
from marketsense.common.db.engine import Database
from marketsense.common.runtime import Runtime
from marketsense.common.settings import CommonSettings
from tests.backends import as_environment, real_servers
from tests.conftest import TEST_AS_OF, eventually
from tests.e2e.processes import Services, running_services, scraped_by_prometheus
from tests.model_registry_rows import new_api_key, publish

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

DASHBOARDS = Path(__file__).resolve().parents[2] / "deploy/helm/marketsense/files/dashboards"
SERVICES = ("orchestrator", "ingestion", "processing", "prediction", "monitoring")
SYMBOLS = [f"D{i:02d}" for i in range(10)]
MODEL = "baseline-predictor"
"""The predictor monitoring judges by default."""
BACKFILL_START = exchange_calendar().sessions(TEST_AS_OF - dt.timedelta(days=30), TEST_AS_OF)[0]
BACKFILL_END = exchange_calendar().previous_session(TEST_AS_OF)

EXEMPT: dict[str, str] = {}
"""Panel queries (dashboard / panel title / refId) allowed to return nothing, with the reason
no short history can produce their data. None today: the panels counting what a healthy history
never does (5xx answers, retries, dead letters, alerts, model swaps) show 0 until it happens."""


@pytest.fixture
async def deployment(
    fresh_pg_database_url: str,
    tmp_path: Path,
    prefix: str,
    predictor_dir: Path,
    sentiment_model_dir: Path,
) -> AsyncIterator[tuple[Services, str]]:
    """Every service of the pipeline and monitoring as processes, and their topic prefix. The
    predictor is served from the registry, as deployed, so monitoring finds the feature
    reference stored with its version and measures drift."""
    servers = real_servers(
        database_url=fresh_pg_database_url, prefix=prefix, bucket="marketsense-e2e"
    )
    runtime = Runtime(
        CommonSettings.model_validate(servers | {"home": tmp_path / "home"}), service="registry"
    )
    await runtime.start_storage()
    await publish(runtime, name=MODEL, folder=predictor_dir, announce=False)
    await runtime.stop()
    env = as_environment(
        servers
        | {
            "predictor_model": MODEL,
            "predictor_path": tmp_path / "no-local-model",
            "sentiment_model_path": sentiment_model_dir,
            "home": tmp_path / "home",
            "gauge_refresh_seconds": 1,
        }
    )
    with running_services(SERVICES, env, tmp_path) as services:
        yield services, prefix


def panel_queries(label: str) -> dict[str, str]:
    """Every panel target's PromQL of every dashboard, keyed by dashboard / panel / refId, with
    the template variables filled in: the namespace filter becomes this test's targets."""
    queries = {}
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                expr = target["expr"].replace('namespace=~"$namespace"', f'test="{label}"')
                expr = expr.replace("$model", ".*").replace("$__rate_interval", "1m")
                assert "$" not in expr, f"{path.name}: a template variable left in {expr}"
                queries[f"{dashboard['uid']} / {panel['title']} / {target['refId']}"] = expr
    return queries


async def finished(client: httpx.AsyncClient, url: str) -> dict[str, object]:
    """The run at `url` once it has reached a final state."""
    run: dict[str, object] = {}

    async def done() -> bool:
        nonlocal run
        answer = (await client.get(url)).json()
        run = answer.get("run", answer)
        return run["state"] not in {"PENDING", "RUNNING"}

    await eventually(done, timeout=240, interval=0.5)
    return run


async def short_history(client: httpx.AsyncClient, orchestrator: str) -> None:
    """A backfill of four weeks, then the next session's daily run, both successful."""
    backfill = await client.post(
        f"{orchestrator}/v1/backfills",
        json={
            "start": BACKFILL_START.isoformat(),
            "end": BACKFILL_END.isoformat(),
            "symbols": SYMBOLS,
        },
    )
    assert backfill.status_code == 201, backfill.text
    run_id = backfill.json()["run"]["id"]
    run = await finished(client, f"{orchestrator}/v1/backfills/{run_id}")
    assert run["state"] == "SUCCESS", run
    daily = await client.post(
        f"{orchestrator}/v1/runs", json={"as_of": TEST_AS_OF.isoformat(), "symbols": SYMBOLS}
    )
    assert daily.status_code == 201, daily.text
    run = await finished(client, f"{orchestrator}/v1/runs/{daily.json()['id']}")
    assert run["state"] == "SUCCESS", run


async def panels_without_data(
    client: httpx.AsyncClient, query: str, queries: dict[str, str]
) -> list[str]:
    """The panel queries (exempt ones aside) for which Prometheus still returns no series after
    up to a minute: scraped every second, and the gauges read again every second, the series of
    a history's last steps appear within seconds."""
    empty: list[str] = []
    for _ in range(30):
        empty = []
        for name, expr in queries.items():
            answer = (await client.get(query, params={"query": expr})).json()
            assert answer["status"] == "success", (name, expr, answer)
            if not answer["data"]["result"] and name not in EXEMPT:
                empty.append(name)
        if not empty:
            break
        await asyncio.sleep(2)
    return empty


async def test_every_dashboard_panel_shows_data_after_a_short_history(
    deployment: tuple[Services, str], pg_database: Database
) -> None:
    services, prefix = deployment
    label = prefix
    queries = panel_queries(label)
    assert set(EXEMPT) <= set(queries)
    dashboards = {name.split(" / ")[0] for name in queries}
    assert dashboards == {
        "marketsense-pipeline", "marketsense-services", "marketsense-model-performance"
    }  # fmt: skip
    async with httpx.AsyncClient(timeout=10) as client:
        await services.wait_ready(client)
        client.headers["X-API-Key"] = await new_api_key(pg_database, role=Role.PUBLISHER)
        with scraped_by_prometheus(services.ports, label) as query:
            await short_history(client, services.url("orchestrator"))
            empty = await panels_without_data(client, query, queries)
    assert not empty, "panels without data:\n" + "\n".join(
        f"{name}: {queries[name]}" for name in empty
    )
