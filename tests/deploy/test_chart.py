"""The Helm chart: lints, renders valid Kubernetes for every profile, refuses bad values, and
agrees with the code it deploys (settings, ports, probes, topics, metrics, images)."""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase
from pydantic_settings import BaseSettings
from scripts.chart_values_schema import SERVICE_SETTINGS, is_secret, render

from marketsense.common import metrics
from marketsense.common.events import PAYLOAD_TYPES
from marketsense.common.serve import DEFAULT_PORTS, SERVICES
from marketsense.orchestrator.daily_run import DailyRunSettings
from tests.deploy.chart_support import (
    CHART,
    KUBERNETES_VERSION,
    PROFILES,
    ROOT,
    documents,
    find,
    helm,
    kubeconform,
    kubernetes_schema_dir,
    render_text,
    template_args,
)
from tests.deploy.image_support import image, instruction

pytestmark = pytest.mark.timeout(300)

# Every optional resource on: KEDA for each consumer, Strimzi topics, every secret named.
EVERYTHING = [
    "services.ingestion.keda.enabled=true",
    "services.processing.keda.enabled=true",
    "services.prediction.keda.enabled=true",
    "services.orchestrator.keda.enabled=true",
    "kafkaTopics.enabled=true",
    "kafkaTopics.namespace=kafka",
    "services.orchestrator.secrets.alert_slack_webhook_url.name=alerts",
    "services.orchestrator.secrets.alert_webhook_url.name=alerts",
    "services.orchestrator.secrets.alert_smtp_password.name=alerts",
    "services.ingestion.secrets.x_bearer_token.name=x-api",
]
PLACEHOLDER_SECRETS = {
    "MARKETSENSE_DATABASE_URL": "postgresql://app:pw@db-rw:5432/app",
    "MARKETSENSE_API_KEY": "msk_" + "k" * 40,
}


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """The chart rendered with each profile's values, and with everything optional on."""
    out = {name: documents(render_text(values)) for name, values in PROFILES.items()}
    out["everything"] = documents(render_text(sets=EVERYTHING))
    return out


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    """The pod spec of a Deployment, Job or CronJob."""
    if doc["kind"] == "CronJob":
        return dict(doc["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return dict(doc["spec"]["template"]["spec"])


def pod_environment(docs: list[dict[str, Any]], workload: dict[str, Any]) -> dict[str, str]:
    """The MARKETSENSE_* environment a workload's container starts with (secrets as stand-ins)."""
    [container] = pod_spec(workload)["containers"]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        [config_map] = find(docs, "ConfigMap", source["configMapRef"]["name"])
        env.update(config_map.get("data", {}))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            assert ref["name"], item
            assert ref["key"], item
            env[item["name"]] = PLACEHOLDER_SECRETS.get(item["name"], f"secret-{ref['key']}")
    return env


def read_settings(
    cls: type[BaseSettings], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> BaseSettings:
    """Settings read from exactly `env`, as the service reads them at start."""
    for key in [k for k in os.environ if k.startswith("MARKETSENSE_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return cls()


@pytest.mark.parametrize("profile", [*PROFILES, "everything"])
def test_chart_renders_kubernetes_that_kubeconform_accepts_strictly(
    profile: str, rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    docs = rendered[profile]
    text = yaml.safe_dump_all(docs)

    done = kubeconform(text, kubernetes_schema_dir(tmp_path, docs))

    summary = json.loads(done.stdout)["summary"]
    assert done.returncode == 0, done.stdout + done.stderr
    assert summary == {"valid": len(docs), "invalid": 0, "errors": 0, "skipped": 0}


def test_kubeconform_rejects_an_unknown_field_in_every_kind_the_chart_renders(
    rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    docs = rendered["everything"]
    kinds = {d["kind"]: d for d in docs}
    broken = []
    for doc in kinds.values():
        bad = copy.deepcopy(doc)
        bad.setdefault("spec", {})["replicaz"] = 1
        if doc["kind"] in ("ConfigMap", "ServiceAccount"):
            bad = copy.deepcopy(doc) | {"dataz": {}}
        broken.append(bad)

    done = kubeconform(yaml.safe_dump_all(broken), kubernetes_schema_dir(tmp_path, docs))

    assert set(kinds) >= {"ScaledObject", "KafkaTopic", "ServiceMonitor", "PrometheusRule"}
    assert json.loads(done.stdout)["summary"]["invalid"] == len(kinds), done.stdout


@pytest.mark.parametrize("profile", list(PROFILES))
def test_helm_lint_passes_strictly(profile: str) -> None:
    args = ["lint", "--strict", str(CHART), "--kube-version", KUBERNETES_VERSION]
    for path in PROFILES[profile]:
        args += ["--values", str(path)]

    output = helm(*args).stdout

    assert "1 chart(s) linted, 0 chart(s) failed" in output


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        (
            "services.prediction.port=abc",
            "at '/services/prediction/port': got string, want integer",
        ),
        ("settings.log_levle=DEBUG", "additional properties 'log_levle' not allowed"),
        (
            "settings.handler_max_attempts=0",
            "at '/settings/handler_max_attempts': minimum: got 0, want 1",
        ),
        (
            "services.ingestion.settings.source=ftp",
            "value must be one of 'simulated', 'files', 'http'",
        ),
        ("services.orchestrator.settings.failure_threshold=2", "maximum: got 2, want 1"),
        ("dailyRun.universe=AAPL;MSFT", "at '/dailyRun/universe'"),
        ("secrets.database_url.key=", "at '/secrets/database_url/key'"),
        ("services.monitoring.keda.enabled=true", "monitoring consumes no topic"),
        (
            "dailyRun.apiKey.name=",
            "dailyRun.apiKey.name: name the Secret holding a publisher API key",
        ),
    ],
)
def test_a_wrong_value_is_refused_with_a_message_naming_it(pair: str, message: str) -> None:
    done = helm(*template_args(sets=[pair]), check=False)

    assert done.returncode != 0
    assert message in done.stderr


def test_values_schema_is_generated_from_the_current_settings_classes() -> None:
    current = (CHART / "values.schema.json").read_text()

    assert current == render(), "run `uv run python scripts/chart_values_schema.py`"


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
    [cron] = find(docs, "CronJob")
    [container] = pod_spec(cron)["containers"]
    [service] = find(docs, "Service", "ms-marketsense-orchestrator")

    settings = read_settings(DailyRunSettings, pod_environment(docs, cron), monkeypatch)

    assert container["command"] == ["python", "-m", "marketsense.orchestrator.daily_run"]
    assert importlib.util.find_spec("marketsense.orchestrator.daily_run") is not None
    assert isinstance(settings, DailyRunSettings)
    port = service["spec"]["ports"][0]["port"]
    assert settings.orchestrator_url == f"http://ms-marketsense-orchestrator:{port}"
    assert len(settings.symbols()) == 10
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


@pytest.mark.parametrize("profile", [*PROFILES, "everything"])
def test_every_pod_runs_unprivileged_on_a_read_only_root_with_limits(
    profile: str, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    workloads = [d for d in rendered[profile] if d["kind"] in ("Deployment", "Job", "CronJob")]

    assert workloads
    for workload in workloads:
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == 10001
        assert spec["automountServiceAccountToken"] is False
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            assert container["resources"]["requests"]
            assert container["resources"]["limits"]
            assert not container["image"].endswith(":latest")


def test_images_are_the_ones_skaffold_builds_and_skaffold_deploys_the_chart(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    config = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    built = {a["image"] for a in config["build"]["artifacts"]}
    [release] = config["manifests"]["helm"]["releases"]
    profiles = {p["name"]: p for p in config["profiles"]}
    deployed = {
        pod_spec(d)["containers"][0]["image"].rsplit("/", 1)[1].split(":")[0]
        for d in rendered["default"]
        if d["kind"] in ("Deployment", "Job", "CronJob")
    }

    assert deployed == built
    assert (ROOT / release["chartPath"]) == CHART
    assert release["setValueTemplates"] == {
        f"services.{s}.image": f"{{{{.IMAGE_FULLY_QUALIFIED_marketsense_{s}}}}}" for s in SERVICES
    }
    for name in ("dev", "prod"):
        [patch] = profiles[name]["patches"]
        assert [ROOT / p for p in patch["value"]] == PROFILES[name]


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

    assert len(maps) == len(list((CHART / "files" / "dashboards").glob("*.json"))) == 2
    for config_map in maps:
        [(name, text)] = config_map["data"].items()
        dashboard = json.loads(text)
        exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
        used = {m for e in exprs for m in re.findall(r"\b(marketsense_\w+|up)\b", e)}
        assert used, name
        assert used <= known, (name, used - known)
        assert {p["datasource"]["uid"] for p in dashboard["panels"]} == {"${datasource}"}


def _exported_series() -> set[str]:
    """Every series name the services export (a histogram's _bucket, _count, _sum too), and up."""
    names = {"up"}
    exported = [v for v in vars(metrics).values() if isinstance(v, MetricWrapperBase)]
    assert len(exported) >= 15
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
            3 if service == "orchestrator" else 2 if service in ("prediction", "registry") else 1
        )
    assert ports(policy_of("migrations")) == {53, 5432}
    daily = policy_of("daily-run")
    assert ports(daily) == {53, DEFAULT_PORTS["orchestrator"]}
    assert 587 in ports(policy_of("orchestrator"))
