"""Render the Helm chart and validate manifests offline with helm and kubeconform."""

from __future__ import annotations

import functools
import json
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "marketsense"
PROFILES = {
    "default": [],
    "dev": [ROOT / "deploy/helm/values-dev.yaml"],
    "prod": [ROOT / "deploy/helm/values-prod.yaml"],
}
CRD_SCHEMAS = ROOT / "deploy" / "crd-schemas"
KUBERNETES_VERSION = "1.37.0"
"""The newest Kubernetes whose schemas kubernetes-validate ships; the chart needs 1.27 or newer."""

_K8S_SCHEMAS = (
    Path(kubernetes_validate.__file__).parent
    / "kubernetes-json-schema"
    / f"v{KUBERNETES_VERSION}-local-strict"
)
_SHARED = "/api/_definitions.json#/$defs/"
BUILT_IN_LAYOUT = (
    "{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/"
    "{{ .ResourceKind }}{{ .KindSuffix }}.json"
)
CRD_LAYOUT = "{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json"
_LOCAL = "#/$defs/"


def tool(name: str) -> Path:
    """A binary infra/k8s-tools.sh built; the test fails with what to run when it is missing."""
    folder = Path(os.environ.get("MARKETSENSE_TEST_K8S_BIN", ROOT / ".infra" / "bin"))
    path = folder / name
    if not path.is_file():
        pytest.fail(
            f"{path} is missing: run `bash infra/k8s-tools.sh install` (or scripts/test.sh)"
        )
    return path


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run helm; with `check`, a non-zero exit fails the test with helm's output."""
    done = subprocess.run(
        [str(tool("helm")), *args], capture_output=True, text=True, timeout=120, check=False
    )
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def template_args(values: Iterable[Path] = (), sets: Iterable[str] = ()) -> list[str]:
    """`helm template` arguments for the chart with values files and --set pairs."""
    args = [
        "template",
        "ms",
        str(CHART),
        "--namespace",
        "trading",
        "--kube-version",
        KUBERNETES_VERSION,
    ]
    for path in values:
        args += ["--values", str(path)]
    for pair in sets:
        args += ["--set", pair]
    return args


def render_text(values: Iterable[Path] = (), sets: Iterable[str] = ()) -> str:
    """The chart rendered with values files and --set pairs, as helm prints it."""
    return helm(*template_args(values, sets)).stdout


def documents(text: str) -> list[dict[str, Any]]:
    """The non-empty YAML documents of a rendered chart."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    """Documents of a kind (and name)."""
    return [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            for prefix in (_SHARED, _LOCAL):
                if ref.startswith(prefix):
                    found.add(ref.removeprefix(prefix))
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


@functools.cache
def _definitions() -> dict[str, Any]:
    """kubernetes-validate's shared definitions, read once (several MB of JSON)."""
    found: dict[str, Any] = json.loads((_K8S_SCHEMAS / "_definitions.json").read_text())["$defs"]
    return found


def standalone_schema(file_name: str) -> dict[str, Any]:
    """A kubernetes-validate schema with the definitions it needs inlined.

    kubernetes-validate's schemas point into one shared `/api/_definitions.json` by absolute
    path, which kubeconform cannot follow; inlining what each one uses makes it self-contained.
    """
    definitions = _definitions()
    schema = json.loads((_K8S_SCHEMAS / file_name).read_text())
    needed: set[str] = set()
    _refs(schema, needed)
    todo = list(needed)
    while todo:
        more: set[str] = set()
        _refs(definitions[todo.pop()], more)
        todo += sorted(more - needed)
        needed |= more
    schema["$defs"] = {name: definitions[name] for name in sorted(needed)}
    inlined: dict[str, Any] = json.loads(json.dumps(schema).replace(f'"{_SHARED}', f'"{_LOCAL}'))
    return inlined


def kubernetes_schema_dir(folder: Path, docs: list[dict[str, Any]]) -> Path:
    """Write kubeconform's `<version>-standalone-strict/<kind>-<group>-<version>.json` for the
    built-in kinds among `docs`; returns the folder to pass as its schema location root."""
    target = folder / f"v{KUBERNETES_VERSION}-standalone-strict"
    target.mkdir(parents=True, exist_ok=True)
    for doc in docs:
        group, _, version = doc["apiVersion"].rpartition("/")
        suffix = f"-{group.split('.')[0]}-{version}" if group else f"-{version}"
        name = f"{doc['kind'].lower()}{suffix}.json"
        if (_K8S_SCHEMAS / name).is_file() and not (target / name).is_file():
            (target / name).write_text(json.dumps(standalone_schema(name)))
    return folder


def kubeconform(text: str, schema_root: Path) -> subprocess.CompletedProcess[str]:
    """Validate manifests strictly against the Kubernetes schemas and the repo's CRD schemas."""
    return subprocess.run(
        [
            str(tool("kubeconform")),
            "-strict",
            "-summary",
            "-output",
            "json",
            "-kubernetes-version",
            KUBERNETES_VERSION,
            "-schema-location",
            f"{schema_root}/{BUILT_IN_LAYOUT}",
            "-schema-location",
            f"{CRD_SCHEMAS}/{CRD_LAYOUT}",
            "-",
        ],
        input=text,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


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
    "services.monitoring.secrets.alert_slack_webhook_url.name=alerts",
    "services.monitoring.secrets.alert_webhook_url.name=alerts",
    "services.monitoring.secrets.alert_smtp_password.name=alerts",
    "services.monitoring.secrets.registry_api_key.name=registry-approver",
    "services.retraining.secrets.registry_api_key.name=registry",
    "services.retraining.secrets.alert_slack_webhook_url.name=alerts",
    "services.retraining.secrets.alert_webhook_url.name=alerts",
    "services.retraining.secrets.alert_smtp_password.name=alerts",
]
PLACEHOLDER_SECRETS = {
    "MARKETSENSE_DATABASE_URL": "postgresql://app:pw@db-rw:5432/app",
    "MARKETSENSE_API_KEY": "msk_" + "k" * 40,
}


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
