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
from marketsense.common.settings import CommonSettings
from marketsense.ingestion.config import IngestionSettings
from marketsense.monitoring.config import MonitoringSettings
from marketsense.orchestrator.config import OrchestratorSettings
from marketsense.prediction.config import PredictionSettings
from marketsense.processing.config import ProcessingSettings
from marketsense.registry.config import RegistrySettings

SCHEMA = Path(__file__).resolve().parents[1] / "deploy/helm/marketsense/values.schema.json"

SERVICE_SETTINGS: dict[str, type[BaseSettings]] = {
    "orchestrator": OrchestratorSettings,
    "ingestion": IngestionSettings,
    "processing": ProcessingSettings,
    "prediction": PredictionSettings,
    "monitoring": MonitoringSettings,
    "registry": RegistrySettings,
}
EGRESS = ["alertSinks", "internet"]
UNIVERSE_PATTERN = "^[A-Za-z0-9.\\-]+(,[A-Za-z0-9.\\-]+)*$"
"""Comma-separated symbols without blanks, as the daily run sends them."""


def is_secret(cls: type[BaseSettings], name: str) -> bool:
    """Whether a field holds a secret (SecretStr, optional or not)."""
    annotation = cls.model_fields[name].annotation
    return annotation is SecretStr or SecretStr in typing.get_args(annotation)


def field_schema(cls: type[BaseSettings], name: str) -> dict[str, Any]:
    """A setting's JSON schema as a chart value: what its environment variable may hold."""
    schema: dict[str, Any] = dict(cls.model_json_schema()["properties"][name])
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


def settings_schema(cls: type[BaseSettings], names: list[str]) -> dict[str, Any]:
    """An object of the named settings, rejecting any other name."""
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {name: field_schema(cls, name) for name in sorted(names)},
    }


def secrets_schema(names: list[str]) -> dict[str, Any]:
    """An object of secret references, one per named secret setting."""
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {name: {"$ref": "#/$defs/secretRef"} for name in sorted(names)},
    }


def service_schema(name: str, cls: type[BaseSettings]) -> dict[str, Any]:
    """services.<name>: the common service block with this service's own settings."""
    own = [f for f in cls.model_fields if f not in CommonSettings.model_fields]
    return {
        "allOf": [{"$ref": "#/$defs/service"}],
        "properties": {
            "settings": settings_schema(cls, [f for f in own if not is_secret(cls, f)]),
            "secrets": secrets_schema([f for f in own if is_secret(cls, f)]),
        },
    }


def integer(minimum: int, maximum: int | None = None) -> dict[str, Any]:
    """An integer schema with bounds."""
    schema: dict[str, Any] = {"type": "integer", "minimum": minimum}
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def document() -> dict[str, Any]:
    """The whole values schema."""
    common = list(CommonSettings.model_fields)
    topics = sorted(p.topic for p in PAYLOAD_TYPES.values())
    peer_list = {"type": "array", "items": {"type": "object"}}
    destination = {
        "type": "object",
        "additionalProperties": False,
        "required": ["to", "ports"],
        "properties": {"to": peer_list, "ports": {"type": "array", "items": integer(1, 65535)}},
    }
    service_block: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "enabled": {"type": "boolean"},
            "image": {"type": "string", "description": "Full image reference; empty: built."},
            "port": integer(1, 65535),
            "replicas": integer(0),
            "api": {"type": "boolean", "description": "API clients may call it."},
            "consumes": {"type": "array", "items": {"enum": topics}},
            "egress": {"type": "array", "items": {"enum": EGRESS}},
            "resources": {"type": "object"},
            "tmpSizeLimit": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti)?$"},
            "autoscaling": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "enabled": {"type": "boolean"},
                    "minReplicas": integer(1),
                    "maxReplicas": integer(1),
                    "targetCPUUtilizationPercentage": integer(1, 100),
                },
            },
            "keda": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "enabled": {"type": "boolean"},
                    "minReplicas": integer(0),
                    "maxReplicas": integer(1),
                    "lagThreshold": integer(1),
                    "pollingInterval": integer(1),
                    "cooldownPeriod": integer(0),
                },
            },
            "podDisruptionBudget": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "enabled": {"type": "boolean"},
                    "maxUnavailable": {"type": ["integer", "string"]},
                },
            },
            "podAnnotations": {"type": "object", "additionalProperties": {"type": "string"}},
            "nodeSelector": {"type": "object", "additionalProperties": {"type": "string"}},
            "tolerations": {"type": "array", "items": {"type": "object"}},
            "affinity": {"type": "object"},
            "settings": {"type": "object"},
            "secrets": {"type": "object"},
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "marketsense chart values",
        "type": "object",
        "additionalProperties": False,
        "$defs": {
            "secretRef": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "key"],
                "properties": {
                    "name": {"type": "string", "description": "Secret name; empty: unset."},
                    "key": {"type": "string", "minLength": 1},
                },
            },
            "service": service_block,
        },
        "properties": {
            "image": {
                "type": "object",
                "additionalProperties": False,
                "required": ["registry"],
                "properties": {
                    "registry": {"type": "string", "minLength": 1},
                    "tag": {"type": "string"},
                    "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
                },
            },
            "imagePullSecrets": {"type": "array", "items": {"type": "object"}},
            "settings": settings_schema(
                CommonSettings, [f for f in common if not is_secret(CommonSettings, f)]
            ),
            "secrets": secrets_schema([f for f in common if is_secret(CommonSettings, f)]),
            "serviceDefaults": {"$ref": "#/$defs/service"},
            "services": {
                "type": "object",
                "additionalProperties": False,
                "required": list(SERVICE_SETTINGS),
                "properties": {
                    name: service_schema(name, cls) for name, cls in SERVICE_SETTINGS.items()
                },
            },
            "dailyRun": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "enabled": {"type": "boolean"},
                    "schedule": {"type": "string", "pattern": "^(\\S+\\s+){4}\\S+$"},
                    "timeZone": {"type": "string", "minLength": 1},
                    "universe": {"type": "string", "pattern": UNIVERSE_PATTERN},
                    "attempts": integer(1),
                    "apiKey": {"$ref": "#/$defs/secretRef"},
                },
            },
            "migrations": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "enabled": {"type": "boolean"},
                    "activeDeadlineSeconds": integer(1),
                    "backoffLimit": integer(0),
                },
            },
            "serviceAccount": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "create": {"type": "boolean"},
                    "name": {"type": "string"},
                    "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            },
            "serviceMonitor": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "enabled": {"type": "boolean"},
                    "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            },
            "prometheusRule": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "enabled": {"type": "boolean"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            },
            "dashboards": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "enabled": {"type": "boolean"},
                    "label": {"type": "string", "minLength": 1},
                    "labelValue": {"type": "string"},
                    "folder": {"type": "string"},
                },
            },
            "kafkaTopics": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "enabled": {"type": "boolean"},
                    "cluster": {"type": "string", "minLength": 1},
                    "namespace": {"type": "string"},
                    "partitions": integer(1),
                    "replicas": integer(1, 32767),
                    "config": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            },
            "networkPolicy": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "enabled": {"type": "boolean"},
                    "dns": destination,
                    "kafka": destination,
                    "database": destination,
                    "objectStore": destination,
                    "alertSinks": destination,
                    "internet": destination,
                    "prometheus": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"from": peer_list},
                    },
                    "apiClients": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"from": peer_list},
                    },
                },
            },
            "podSecurityContext": {"type": "object"},
            "securityContext": {"type": "object"},
            "global": {"type": "object"},
        },
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
