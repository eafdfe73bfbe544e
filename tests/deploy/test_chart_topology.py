"""The Helm chart's topology: replicas and autoscaling per profile, KEDA on the topics each
service consumes, Strimzi topics, alert rules, dashboards and network policies."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase
from scripts.chart_values_schema import SERVICE_SETTINGS

from marketsense.common import metrics
from marketsense.common.bus.topics import TopicPolicy
from marketsense.common.events import PAYLOAD_TYPES
from marketsense.common.serve import DEFAULT_PORTS, SERVICES
from marketsense.common.settings import CommonSettings, event_topics
from marketsense.monitoring import gauges
from tests.deploy.chart_support import (
    CHART,
    documents,
    find,
    pod_environment,
    read_settings,
    render_text,
)

pytestmark = pytest.mark.timeout(300)


def test_dev_profile_runs_one_replica_with_debug_logs_and_prod_scales_on_lag(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    dev, prod = rendered["dev"], rendered["prod"]

    assert {d["spec"]["replicas"] for d in find(dev, "Deployment")} == {1}
    assert not find(dev, "HorizontalPodAutoscaler")
    assert {
        d["data"].get("MARKETSENSE_LOG_LEVEL")
        for d in find(dev, "ConfigMap")
        if "MARKETSENSE_HOME" in d.get("data", {})
    } == {"DEBUG"}
    scaled = {d["metadata"]["name"] for d in find(prod, "ScaledObject")}
    assert scaled == {f"ms-marketsense-{s}" for s in ("ingestion", "processing", "prediction")}
    # A service KEDA scales has no HPA of its own: two autoscalers would fight.
    hpas = {d["metadata"]["name"] for d in find(prod, "HorizontalPodAutoscaler")}
    assert not scaled & hpas


def test_keda_scales_each_consumer_on_the_topics_and_group_it_really_consumes(
    rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    consumed = _consumed_topics(tmp_path)
    for scaled in find(rendered["everything"], "ScaledObject"):
        service = scaled["metadata"]["name"].removeprefix("ms-marketsense-")
        triggers = scaled["spec"]["triggers"]

        assert {t["metadata"]["topic"] for t in triggers} == consumed[service], service
        assert {t["metadata"]["consumerGroup"] for t in triggers} == {f"marketsense.{service}"}
    assert {s for s, topics in consumed.items() if topics} == {
        "orchestrator",
        "ingestion",
        "processing",
        "prediction",
        "monitoring",
        "retraining",
    }


def _consumed_topics(home: Path) -> dict[str, set[str]]:
    """Topics each service's stable consumer group subscribes to, read from the services."""
    from marketsense.common.runtime import Runtime

    found = {}
    for service, cls in SERVICE_SETTINGS.items():
        settings = cls(home=home / service)
        runtime = Runtime(settings, service=service)  # type: ignore[arg-type]
        module = importlib.import_module(f"marketsense.{service}.app")
        module.create_component(runtime, settings)
        found[service] = {
            s.topic for s in runtime.bus.subscriptions if s.group == f"marketsense.{service}"
        }
    return found


def test_strimzi_topics_are_every_event_topic_and_its_dead_letter_topic(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    resources = find(rendered["everything"], "KafkaTopic")
    topics = {d["spec"]["topicName"] for d in resources}
    names = {d["metadata"]["name"] for d in resources}
    events = {p.topic for p in PAYLOAD_TYPES.values()}

    assert topics == events | {f"{t}.dlq" for t in events}
    assert names == {f"ms-marketsense-{t}" for t in topics}
    assert {d["metadata"]["namespace"] for d in resources} == {"kafka"}
    assert {d["metadata"]["labels"]["strimzi.io/cluster"] for d in resources} == {"marketsense"}


def test_strimzi_topics_take_the_shape_the_services_create_and_check_topics_with(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = documents(
        render_text(
            sets=[
                "kafkaTopics.enabled=true",
                "settings.topic_prefix=prod.",
                "settings.kafka_topic_overrides.raw\\.ready.partitions=24",
                "settings.kafka_topic_overrides.raw\\.ready\\.dlq.retention_ms=-1",
            ]
        )
    )
    [deployment] = find(docs, "Deployment", "ms-marketsense-processing")
    settings = read_settings(CommonSettings, pod_environment(docs, deployment), monkeypatch)
    policy = TopicPolicy.from_settings(settings)  # type: ignore[arg-type]

    shapes = {
        d["spec"]["topicName"]: (
            d["spec"]["partitions"],
            d["spec"]["replicas"],
            d["spec"]["config"],
        )
        for d in find(docs, "KafkaTopic")
    }

    wanted = {name: policy.spec(name) for name in event_topics()}
    assert shapes == {
        f"prod.{name}": (spec.partitions, spec.replication_factor, spec.configs())
        for name, spec in wanted.items()
    }
    assert shapes["prod.raw.ready"][:2] == (24, 3)
    assert shapes["prod.raw.ready.dlq"][2] == {"min.insync.replicas": "2", "retention.ms": "-1"}
    assert shapes["prod.task.failed.dlq"][2]["retention.ms"] == "2592000000"  # 30 days


def test_prometheus_rule_is_the_tested_alert_file(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    [rule] = find(rendered["default"], "PrometheusRule")

    assert rule["spec"] == yaml.safe_load((CHART / "files" / "alerts.yml").read_text())


def test_dashboards_are_labelled_for_grafana_and_query_only_metrics_that_exist(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    maps = [
        d
        for d in find(rendered["default"], "ConfigMap")
        if "grafana_dashboard" in d["metadata"]["labels"]
    ]
    known = _exported_series()

    assert len(maps) == len(list((CHART / "files" / "dashboards").glob("*.json"))) == 3
    for config_map in maps:
        [(name, text)] = config_map["data"].items()
        dashboard = json.loads(text)
        exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
        used = {m for e in exprs for m in re.findall(r"\b(marketsense_\w+|up)\b", e)}
        assert used, name
        assert used <= known, (name, used - known)
        assert {p["datasource"]["uid"] for p in dashboard["panels"]} == {"${datasource}"}


def _exported_series() -> set[str]:
    """Every series name the services export (a histogram's _bucket, _count, _sum too), and up:
    the shared metrics and the monitoring service's model gauges."""
    names = {"up"}
    exported = [
        v
        for module in (metrics, gauges)
        for v in vars(module).values()
        if isinstance(v, MetricWrapperBase)
    ]
    assert len(exported) >= 30
    for value in exported:
        for family in value.describe():
            base = family.name
            names |= {
                "counter": {f"{base}_total"},
                "gauge": {base},
                "histogram": {f"{base}_bucket", f"{base}_count", f"{base}_sum"},
            }.get(family.type, set())
    return names


def test_network_policies_deny_by_default_and_let_each_pod_reach_what_it_needs(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["default"]
    policies = find(docs, "NetworkPolicy")
    [deny] = [p for p in policies if p["metadata"]["name"].endswith("-default-deny")]

    def ports(policy: dict[str, Any]) -> set[int]:
        return {p["port"] for rule in policy["spec"].get("egress", []) for p in rule["ports"]}

    def policy_of(component: str) -> dict[str, Any]:
        [policy] = [
            p
            for p in policies
            if p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component")
            == component
        ]
        return policy

    assert "ingress" not in deny["spec"]
    assert "egress" not in deny["spec"]
    for service in SERVICES:
        policy = policy_of(service)
        assert {53, 9092, 5432, 443} <= ports(policy), service
        callers = policy["spec"]["ingress"]
        assert len(callers) == (
            3
            if service == "orchestrator"
            else 2
            if service in ("prediction", "registry", "retraining", "monitoring")
            else 1
        )
    # The retraining worker pushes challengers and monitoring promotes or retires them through
    # the registry's API; no other service changes the registry.
    registry_port = DEFAULT_PORTS["registry"]
    assert {s for s in SERVICES if registry_port in ports(policy_of(s))} == {
        "retraining",
        "monitoring",
    }
    assert ports(policy_of("migrations")) == {53, 5432}
    daily = policy_of("daily-run")
    assert ports(daily) == {53, DEFAULT_PORTS["orchestrator"]}
    assert 587 in ports(policy_of("orchestrator"))
