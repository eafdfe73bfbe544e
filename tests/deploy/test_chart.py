"""The Helm chart: lints, renders valid Kubernetes for every profile that kubeconform accepts,
refuses bad values naming them, runs every pod unprivileged, and deploys the images skaffold
builds."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from scripts.chart_values_schema import render

from marketsense.common.serve import SERVICES
from tests.deploy.chart_support import (
    CHART,
    KUBERNETES_VERSION,
    PROFILES,
    ROOT,
    helm,
    kubeconform,
    kubernetes_schema_dir,
    pod_spec,
    template_args,
)

pytestmark = pytest.mark.timeout(300)


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
        ("services.registry.keda.enabled=true", "registry consumes no topic"),
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
