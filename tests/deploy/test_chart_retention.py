"""The chart's retention CronJob: the pass the code runs, with the policy and the store the
values give it, reaching only DNS, the database and the object store; off when disabled."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
import yaml

from marketsense.common.retention.config import RetentionSettings
from marketsense.common.settings import CommonSettings
from tests.deploy.chart_support import (
    CHART,
    documents,
    find,
    pod_environment,
    pod_spec,
    read_settings,
    render_text,
)

pytestmark = pytest.mark.timeout(300)


def test_retention_job_runs_a_pass_with_the_policy_and_store_the_values_give(
    rendered: dict[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = rendered["default"]
    [cron] = find(docs, "CronJob", "ms-marketsense-retention")
    [container] = pod_spec(cron)["containers"]
    values = yaml.safe_load((CHART / "values.yaml").read_text())["retention"]["settings"]

    settings = read_settings(RetentionSettings, pod_environment(docs, cron), monkeypatch)

    assert container["command"] == ["python", "-m", "marketsense.common.retention"]
    assert importlib.util.find_spec("marketsense.common.retention.__main__") is not None
    assert isinstance(settings, RetentionSettings)
    own = set(RetentionSettings.model_fields) - set(CommonSettings.model_fields)
    assert set(values) == own
    assert {name: getattr(settings, name) for name in own} == values
    assert settings.resolved_object_store_url() == "s3://marketsense"
    assert settings.resolved_database_url().startswith("postgresql+asyncpg://")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    [policy] = [
        p
        for p in find(docs, "NetworkPolicy")
        if p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component") == "retention"
    ]
    ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
    allowed = yaml.safe_load((CHART / "values.yaml").read_text())["networkPolicy"]
    assert ports == {
        port for name in ("dns", "database", "objectStore") for port in allowed[name]["ports"]
    }
    assert 9092 not in ports  # no Kafka


def test_retention_disabled_renders_no_job_and_no_policy() -> None:
    docs = documents(render_text(sets=["retention.enabled=false"]))

    names = [d["metadata"]["name"] for d in docs]
    assert not [name for name in names if "retention" in name]
