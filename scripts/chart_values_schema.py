"""Regenerate deploy/helm/marketsense/values.schema.json from the services' settings classes.

Each setting's type and bounds come from the pydantic class the service reads it with, so the
chart refuses a value the service would refuse, before anything is deployed, naming the value.
Run: `uv run python scripts/chart_values_schema.py` (a test fails when the file is stale).
"""

from __future__ import annotations

import json
import sys
import typing
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from marketsense.common.events import PAYLOAD_TYPES
from marketsense.common.retention.config import RetentionSettings
from marketsense.common.settings import CommonSettings
from marketsense.ingestion.config import IngestionSettings
from marketsense.monitoring.config import MonitoringSettings
from marketsense.orchestrator.config import OrchestratorSettings
from marketsense.prediction.config import PredictionSettings
from marketsense.processing.config import ProcessingSettings
from marketsense.registry.config import RegistrySettings
from marketsense.retraining.config import RetrainingSettings

SCHEMA = Path(__file__).resolve().parents[1] / "deploy/helm/marketsense/values.schema.json"

SERVICE_SETTINGS: dict[str, type[BaseSettings]] = {
    "orchestrator": OrchestratorSettings,
    "ingestion": IngestionSettings,
    "processing": ProcessingSettings,
    "prediction": PredictionSettings,
    "monitoring": MonitoringSettings,
    "registry": RegistrySettings,
    "retraining": RetrainingSettings,
}
EGRESS = ["alertSinks", "internet", "registry"]
UNIVERSE_PATTERN = "^[A-Za-z0-9.\\-]+(,[A-Za-z0-9.\\-]+)*$"
"""Comma-separated symbols without blanks, as the daily run sends them."""


def is_secret(cls: type[BaseSettings], name: str) -> bool:
    """Whether a field holds a secret (SecretStr, optional or not)."""
    annotation = cls.model_fields[name].annotation
    return annotation is SecretStr or SecretStr in typing.get_args(annotation)


def inlined(schema: Any, defs: dict[str, Any]) -> Any:
    """A schema with each `#/$defs/...` reference replaced by its definition, without titles."""
    if isinstance(schema, list):
        return [inlined(item, defs) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        return inlined(defs[schema["$ref"].removeprefix("#/$defs/")], defs)
    return {
        key: inlined(value, defs)
        if key != "properties"
        else {k: inlined(v, defs) for k, v in value.items()}
        for key, value in schema.items()
        if key not in ("title", "description", "default")
    }


def field_schema(cls: type[BaseSettings], name: str) -> dict[str, Any]:
    """A setting's JSON schema as a chart value: what its environment variable may hold."""
    full = cls.model_json_schema()
    # A setting holding a model (an override map) has its model inlined: the chart's schema
    # has no definitions of the settings classes to refer to.
    schema: dict[str, Any] = inlined(dict(full["properties"][name]), full.get("$defs", {}))
    for key in ("title", "default", "format", "uniqueItems"):
        schema.pop(key, None)
    options = schema.get("anyOf", [schema])
    for option in options:
        option.pop("format", None)
        if option.get("type") == "array":
            # Symbol sets are written as a comma-separated string, as in the environment.
            option.clear()
            option["type"] = "string"
    return schema


def closed(properties: dict[str, Any], *, required: list[str] | None = None) -> dict[str, Any]:
    """An object of exactly these properties: a misspelt name is refused, by name."""
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False}
    if required:
        schema["required"] = required
    schema["properties"] = properties
    return schema


def integer(minimum: int, maximum: int | None = None) -> dict[str, Any]:
    """An integer schema with bounds."""
    schema: dict[str, Any] = {"type": "integer", "minimum": minimum}
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


BOOLEAN = {"type": "boolean"}
STRING = {"type": "string"}
NON_EMPTY = {"type": "string", "minLength": 1}
LABELS = {"type": "object", "additionalProperties": STRING}
"""String to string, as labels, annotations and node selectors are."""
ANY_OBJECT = {"type": "object"}
OBJECTS = {"type": "array", "items": ANY_OBJECT}


def settings_schema(cls: type[BaseSettings], names: list[str]) -> dict[str, Any]:
    """An object of the named settings, rejecting any other name."""
    return closed({name: field_schema(cls, name) for name in sorted(names)})


def secrets_schema(names: list[str]) -> dict[str, Any]:
    """An object of secret references, one per named secret setting."""
    return closed({name: {"$ref": "#/$defs/secretRef"} for name in sorted(names)})


def service_schema(cls: type[BaseSettings]) -> dict[str, Any]:
    """services.<name>: the common service block with this service's own settings."""
    own = [f for f in cls.model_fields if f not in CommonSettings.model_fields]
    return {
        "allOf": [{"$ref": "#/$defs/service"}],
        "properties": {
            "settings": settings_schema(cls, [f for f in own if not is_secret(cls, f)]),
            "secrets": secrets_schema([f for f in own if is_secret(cls, f)]),
        },
    }


def service_block() -> dict[str, Any]:
    """What `serviceDefaults` and every entry of `services` may hold."""
    topics = sorted(p.topic for p in PAYLOAD_TYPES.values())
    return closed(
        {
            "enabled": BOOLEAN,
            "image": {"type": "string", "description": "Full image reference; empty: built."},
            "port": integer(1, 65535),
            "replicas": integer(0),
            "api": {"type": "boolean", "description": "API clients may call it."},
            "consumes": {"type": "array", "items": {"enum": topics}},
            "egress": {"type": "array", "items": {"enum": EGRESS}},
            "resources": ANY_OBJECT,
            "tmpSizeLimit": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti)?$"},
            "autoscaling": closed(
                {
                    "enabled": BOOLEAN,
                    "minReplicas": integer(1),
                    "maxReplicas": integer(1),
                    "targetCPUUtilizationPercentage": integer(1, 100),
                }
            ),
            "keda": closed(
                {
                    "enabled": BOOLEAN,
                    "minReplicas": integer(0),
                    "maxReplicas": integer(1),
                    "lagThreshold": integer(1),
                    "pollingInterval": integer(1),
                    "cooldownPeriod": integer(0),
                }
            ),
            "podDisruptionBudget": closed(
                {"enabled": BOOLEAN, "maxUnavailable": {"type": ["integer", "string"]}}
            ),
            "podAnnotations": LABELS,
            "nodeSelector": LABELS,
            "tolerations": OBJECTS,
            "affinity": ANY_OBJECT,
            "settings": ANY_OBJECT,
            "secrets": ANY_OBJECT,
        }
    )


def network_policy() -> dict[str, Any]:
    """networkPolicy: where each kind of egress may go, and who may reach the services."""
    destination = closed(
        {"to": OBJECTS, "ports": {"type": "array", "items": integer(1, 65535)}},
        required=["to", "ports"],
    )
    peers = closed({"from": OBJECTS})
    return closed(
        {
            "enabled": BOOLEAN,
            "dns": destination,
            "kafka": destination,
            "database": closed(
                {**destination["properties"], "address": {"type": "string"}},
                required=["to", "ports"],
            ),
            "objectStore": destination,
            "alertSinks": destination,
            "internet": destination,
            "prometheus": peers,
            "apiClients": peers,
        }
    )


def workload_properties() -> dict[str, Any]:
    """The image, the shared settings and secrets, and every service's block."""
    common = list(CommonSettings.model_fields)
    return {
        "image": closed(
            {
                "registry": NON_EMPTY,
                "tag": STRING,
                "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
            },
            required=["registry"],
        ),
        "imagePullSecrets": OBJECTS,
        "settings": settings_schema(
            CommonSettings, [f for f in common if not is_secret(CommonSettings, f)]
        ),
        "secrets": secrets_schema([f for f in common if is_secret(CommonSettings, f)]),
        "serviceDefaults": {"$ref": "#/$defs/service"},
        "services": closed(
            {name: service_schema(cls) for name, cls in SERVICE_SETTINGS.items()},
            required=list(SERVICE_SETTINGS),
        ),
    }


def operations_properties() -> dict[str, Any]:
    """The daily run, migrations, and what the chart installs around the services."""
    return {
        "dailyRun": closed(
            {
                "enabled": BOOLEAN,
                "schedule": {"type": "string", "pattern": "^(\\S+\\s+){4}\\S+$"},
                "timeZone": NON_EMPTY,
                "universe": {"type": "string", "pattern": UNIVERSE_PATTERN},
                "attempts": integer(1),
                "apiKey": {"$ref": "#/$defs/secretRef"},
            }
        ),
        "retention": closed(
            {
                "enabled": BOOLEAN,
                "schedule": {"type": "string", "pattern": "^(\\S+\\s+){4}\\S+$"},
                "timeZone": NON_EMPTY,
                "activeDeadlineSeconds": integer(1),
                "settings": settings_schema(
                    RetentionSettings,
                    [
                        f
                        for f in RetentionSettings.model_fields
                        if f not in CommonSettings.model_fields
                    ],
                ),
            }
        ),
        "migrations": closed(
            {
                "enabled": BOOLEAN,
                "activeDeadlineSeconds": integer(1),
                "backoffLimit": integer(0),
            }
        ),
        "serviceAccount": closed({"create": BOOLEAN, "name": STRING, "annotations": LABELS}),
        "serviceMonitor": closed(
            {
                "enabled": BOOLEAN,
                "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                "labels": LABELS,
            }
        ),
        "prometheusRule": closed({"enabled": BOOLEAN, "labels": LABELS}),
        "dashboards": closed(
            {"enabled": BOOLEAN, "label": NON_EMPTY, "labelValue": STRING, "folder": STRING}
        ),
        "kafkaTopics": closed(
            {
                "enabled": BOOLEAN,
                "cluster": NON_EMPTY,
                "namespace": STRING,
            }
        ),
        "networkPolicy": network_policy(),
        "podSecurityContext": ANY_OBJECT,
        "securityContext": ANY_OBJECT,
        "global": ANY_OBJECT,
    }


def document() -> dict[str, Any]:
    """The whole values schema."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "marketsense chart values",
        "type": "object",
        "additionalProperties": False,
        "$defs": {
            "secretRef": closed(
                {
                    "name": {"type": "string", "description": "Secret name; empty: unset."},
                    "key": NON_EMPTY,
                },
                required=["name", "key"],
            ),
            "service": service_block(),
        },
        "properties": {**workload_properties(), **operations_properties()},
    }


def render() -> str:
    """The schema file's text."""
    return json.dumps(document(), indent=2, sort_keys=False) + "\n"


def main() -> int:
    """Write the schema."""
    SCHEMA.write_text(render())
    print(f"wrote {SCHEMA}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
