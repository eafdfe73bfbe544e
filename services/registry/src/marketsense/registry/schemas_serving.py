"""What the registry answers about the replicas that serve a model, and an alias move's warnings."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict

from marketsense.models.kinds import Variant
from marketsense.registry.schemas import AliasChangeRead

_EXAMPLE_REPLICA: dict[str, Any] = {
    "replica": "processing-7c9d-x2:1",
    "version": "16",
    "variant": "int8",
    "source": "registry",
    "reported_at": "2026-11-20T21:30:05Z",
    "serves_production": True,
    "serves_gated_variant": True,
}


class ReplicaRead(BaseModel):
    """What one replica last reported serving."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE_REPLICA]})

    replica: str
    """Host name and process id of the replica."""
    version: str
    """Version it serves (a registry version number, or a local folder's manifest version)."""
    variant: str
    """Graph it runs: `fp32` or `int8`."""
    source: str
    """`registry` (the production version) or `local` (its configured folder)."""
    reported_at: dt.datetime
    """When it last reported; replicas refresh this on every poll of the production alias."""
    serves_production: bool
    """Whether it serves the registry's current production version."""
    serves_gated_variant: bool
    """Whether its graph is the variant the production gate measured."""


class ServiceServingRead(BaseModel):
    """The fresh reports of one service's replicas."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"service": "processing", "replicas": [_EXAMPLE_REPLICA]}]}
    )

    service: str
    """`processing` (sentiment models) or `prediction` (predictors)."""
    replicas: list[ReplicaRead]
    """Replicas that reported within `stale_seconds`, by replica name."""


class ServingRead(BaseModel):
    """Which version of a model answers requests now, replica by replica."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model_name": "minilm-sentiment",
                    "production_version": 16,
                    "gated_variant": "int8",
                    "stale_seconds": 90.0,
                    "answering_versions": ["16"],
                    "services": [{"service": "processing", "replicas": [_EXAMPLE_REPLICA]}],
                }
            ]
        }
    )

    model_name: str
    """Registered model name."""
    production_version: int | None
    """Version the `production` alias points at, or null if none."""
    gated_variant: Variant
    """Variant whose metric the production gate compares for this version."""
    stale_seconds: float
    """Reports older than this are left out (`MARKETSENSE_REGISTRY_SERVING_STALE_SECONDS`)."""
    answering_versions: list[str]
    """Versions the fresh replicas serve; one entry when every replica agrees."""
    services: list[ServiceServingRead]
    """Fresh reports grouped by service."""


class AliasMoveRead(AliasChangeRead):
    """An alias move, with what the registry noticed about who will serve it."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "model_name": "finbert",
                    "alias": "production",
                    "action": "promote",
                    "from_version": None,
                    "to_version": 1,
                    "actor": "alice",
                    "reason": "FinBERT scores finance headlines better",
                    "forced": False,
                    "at": "2026-11-20T21:30:00Z",
                    "warnings": [
                        "no running service reported serving finbert in the last 90 s: "
                        "processing serves the model named by MARKETSENSE_SENTIMENT_MODEL (its "
                        "replicas serve minilm-sentiment); set MARKETSENSE_SENTIMENT_MODEL=finbert "
                        "to serve this one"
                    ],
                }
            ]
        },
    )

    warnings: list[str] = []
    """Things to check, such as no running service serving this model, or replicas serving
    another variant than the gate measured. Empty when nothing needs attention."""
