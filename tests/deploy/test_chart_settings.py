"""The Helm chart agrees with the code it deploys: every setting a service reads, the settings
each pod starts with, the daily run and migration jobs, probes, ports and scrape targets."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

import pytest
import yaml
from scripts.chart_values_schema import SERVICE_SETTINGS, is_secret

from marketsense.common.serve import DEFAULT_PORTS, SERVICES
from marketsense.orchestrator.daily_run import DailyRunSettings
from tests.deploy.chart_support import (
    CHART,
    PROFILES,
    find,
    pod_environment,
    pod_spec,
    read_settings,
)
from tests.deploy.image_support import image, instruction

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("service", SERVICES)
def test_chart_values_name_every_setting_the_service_reads_and_no_other(service: str) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    own = values["services"][service]
    named = (
        set(values["settings"])
        | set(values["secrets"])
        | set(own.get("settings", {}))
        | set(own.get("secrets", {}))
    )

    assert named == set(SERVICE_SETTINGS[service].model_fields)


@pytest.mark.parametrize("profile", [*PROFILES, "everything"])
@pytest.mark.parametrize("service", SERVICES)
def test_every_service_starts_with_the_settings_the_chart_gives_it(
    service: str,
    profile: str,
    rendered: dict[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = rendered[profile]
    [deployment] = find(docs, "Deployment", f"ms-marketsense-{service}")
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    env = pod_environment(docs, deployment)

    settings = read_settings(SERVICE_SETTINGS[service], env, monkeypatch)

    # Every setting with a value in the chart reaches the pod, and only known ones do.
    chart_values = values["settings"] | values["services"][service].get("settings", {})
    expected = {f"MARKETSENSE_{k.upper()}" for k, v in chart_values.items() if v is not None}
    assert expected <= set(env)
    read = {f"MARKETSENSE_{name.upper()}" for name in SERVICE_SETTINGS[service].model_fields}
    assert set(env) - read == {"MARKETSENSE_HOST", "MARKETSENSE_PORT"}
    assert env["MARKETSENSE_PORT"] == str(DEFAULT_PORTS[service])
    assert env["MARKETSENSE_HOST"] == "0.0.0.0"
    assert settings.model_dump()["kafka_bootstrap_servers"] == "marketsense-kafka-bootstrap:9092"
    assert settings.resolved_database_url().startswith("postgresql+asyncpg://")  # type: ignore[attr-defined]
    if profile == "everything":
        cls = SERVICE_SETTINGS[service]
        secrets = {name for name in cls.model_fields if is_secret(cls, name)}
        assert {f"MARKETSENSE_{s.upper()}" for s in secrets} <= set(env)


def test_daily_run_job_reaches_the_orchestrator_with_a_key_and_the_universe(
    rendered: dict[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = rendered["default"]
    [cron] = find(docs, "CronJob", "ms-marketsense-daily-run")
    [container] = pod_spec(cron)["containers"]
    [service] = find(docs, "Service", "ms-marketsense-orchestrator")

    settings = read_settings(DailyRunSettings, pod_environment(docs, cron), monkeypatch)

    assert container["command"] == ["python", "-m", "marketsense.orchestrator.daily_run"]
    assert importlib.util.find_spec("marketsense.orchestrator.daily_run") is not None
    assert isinstance(settings, DailyRunSettings)
    port = service["spec"]["ports"][0]["port"]
    assert settings.orchestrator_url == f"http://ms-marketsense-orchestrator:{port}"
    assert len(settings.symbols()) == 10
    assert settings.exchange == "XNYS"  # the orchestrator's, so both skip the same days
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"


def test_migrations_run_as_a_hook_before_install_and_upgrade(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    [job] = find(rendered["default"], "Job")
    [container] = pod_spec(job)["containers"]
    env = {e["name"]: e for e in container["env"]}

    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert container["command"] == ["python", "-m", "marketsense.common.db"]
    assert importlib.util.find_spec("marketsense.common.db.__main__") is not None
    assert env["MARKETSENSE_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "marketsense-db-app",
        "key": "uri",
    }
    # Hooks run before the release's own resources exist: no chart-made account or ConfigMap.
    assert "serviceAccountName" not in pod_spec(job)
    assert "envFrom" not in container


@pytest.mark.parametrize("service", SERVICES)
def test_probes_ports_and_scrape_target_match_the_service(
    service: str, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    docs = rendered["default"]
    name = f"ms-marketsense-{service}"
    [deployment] = find(docs, "Deployment", name)
    [container] = pod_spec(deployment)["containers"]
    [svc] = find(docs, "Service", name)
    [monitor] = find(docs, "ServiceMonitor", name)
    routes = _app_routes()
    runtime = image(service)[-1]

    assert container["ports"] == [
        {"name": "http", "containerPort": DEFAULT_PORTS[service], "protocol": "TCP"}
    ]
    assert instruction(runtime, "EXPOSE") == [str(DEFAULT_PORTS[service])]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert {"/healthz", "/readyz", "/metrics"} <= routes
    assert svc["spec"]["ports"][0]["targetPort"] == "http"
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    assert monitor["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"]


@functools.cache
def _app_routes() -> set[str]:
    """Paths every service's app serves besides its own API (create_app's operations routes)."""
    from marketsense.common.app import create_app
    from marketsense.common.runtime import Runtime
    from marketsense.common.settings import CommonSettings

    app = create_app(Runtime(CommonSettings(home=Path("/nonexistent")), service="x"), [], title="x")
    return {getattr(route, "path", "") for route in app.routes}
