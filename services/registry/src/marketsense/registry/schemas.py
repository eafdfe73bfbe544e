"""Registry API models: registered models, their versions and aliases."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from marketsense.common.api_models import MAX_INT32
from marketsense.models.kinds import ModelKind

MODEL_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,127}$"
"""Registered model names: lower case, digits, '.', '_' and '-', up to 128 characters."""
ALIAS_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"
"""Alias names, such as `production` or `staging`."""

_ISO_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ]"


def _iso_text(value: object) -> object:
    """Only an ISO 8601 string (or a datetime, from Python callers) is a time: pydantic would
    otherwise read a number such as 0 as seconds since 1970."""
    if isinstance(value, dt.datetime) or (isinstance(value, str) and re.match(_ISO_TIME, value)):
        return value
    raise ValueError("use an ISO 8601 date and time with a timezone, such as 2026-11-25T14:30Z")


IsoTime = Annotated[
    dt.datetime, BeforeValidator(_iso_text), Field(json_schema_extra={"pattern": _ISO_TIME})
]
"""A time written in ISO 8601, date and time of day."""

AliasAction = Literal["promote", "rollback", "delete"]
"""How an alias moved: set to a chosen version, sent back to the one it held before, or
removed."""

_EXAMPLE_TIME = "2026-11-25T14:30:00Z"
_EXAMPLE_MODEL_SHA = "9f2c4e1b7a0d3c5e8f6a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60"
_EXAMPLE_MANIFEST_SHA = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"
_EXAMPLE_SET_SHA = "5e1f0c9a8b7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f"
_EXAMPLE_CHANGE: dict[str, Any] = {
    "id": 7,
    "model_name": "baseline-predictor",
    "alias": "production",
    "action": "promote",
    "from_version": 2,
    "to_version": 3,
    "actor": "alice",
    "reason": "better holdout AUC on the 2026 Q3 window",
    "forced": False,
    "at": _EXAMPLE_TIME,
}


class ModelCreate(BaseModel):
    """A request to register a model name before pushing versions of it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "baseline-predictor",
                    "kind": "predictor",
                    "description": "Logistic regression over technical and sentiment features.",
                }
            ]
        },
    )

    name: str = Field(pattern=MODEL_NAME_PATTERN)
    """Model name: lower case letters, digits, '.', '_' and '-', starting with a letter or digit."""
    kind: ModelKind
    """`sentiment` or `predictor`; every version pushed must be of this kind."""
    description: str = Field(default="", max_length=2000)
    """What the model is for, in a sentence or two."""


class ModelRead(BaseModel):
    """A registered model with its aliases and newest version."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "baseline-predictor",
                    "kind": "predictor",
                    "description": "Logistic regression over technical and sentiment features.",
                    "created_by": "alice",
                    "created_at": _EXAMPLE_TIME,
                    "aliases": {"production": 3, "staging": 4},
                    "latest_version": 4,
                }
            ]
        }
    )

    name: str
    """Model name."""
    kind: ModelKind
    """`sentiment` or `predictor`."""
    description: str
    """What the model is for."""
    created_by: str
    """Name of the API key that registered it."""
    created_at: dt.datetime
    """When it was registered (UTC)."""
    aliases: dict[str, int]
    """Every alias that is set, with the version it points at."""
    latest_version: int | None
    """The newest version pushed, or null before the first push."""


class FileRead(BaseModel):
    """One stored file of a version, `manifest.json` included."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "model.onnx",
                    "sha256": _EXAMPLE_MODEL_SHA,
                    "size": 1187,
                }
            ]
        }
    )

    name: str
    """File name inside the version, such as `model.onnx`."""
    sha256: str
    """Hex SHA-256 of its bytes; downloads carry it in the `X-Checksum-Sha256` header."""
    size: int
    """Size in bytes."""


class MeasuredRead(BaseModel):
    """One metric the registry measured itself for one variant of a version on an evaluation set."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "variant": "int8",
                    "metric": "heldout_macro_f1",
                    "value": 0.8153,
                    "evaluation_set_id": 1,
                    "evaluation_set_sha256": _EXAMPLE_SET_SHA,
                    "evaluation_set_name": "marketsense-heldout-300",
                }
            ]
        }
    )

    variant: Literal["fp32", "int8"]
    """Which graph was scored: `fp32` (`model.onnx`) or `int8` (`model.int8.onnx`)."""
    metric: str
    """Metric name, such as `heldout_macro_f1` or `holdout_auc`."""
    value: float
    """Its value."""
    evaluation_set_id: int
    """The evaluation set scored on."""
    evaluation_set_sha256: str
    """Hex sha256 of the set's bytes."""
    evaluation_set_name: str
    """The set's name."""


class VersionRead(BaseModel):
    """A pushed version of a model: its manifest, files, metrics and the aliases it holds."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model_name": "baseline-predictor",
                    "version": 3,
                    "kind": "predictor",
                    "manifest": {
                        "name": "baseline-predictor",
                        "version": "3",
                        "kind": "predictor",
                        "feature_schema": "technical-sentiment-v2",
                        "features": ["ret_1d", "sentiment_mean"],
                        "input_name": "float_input",
                        "probability_output": "probabilities",
                        "horizon_days": 1,
                        "metrics": {"holdout_auc": 0.58},
                        "evaluation_window": "2026-07-01..2026-09-30",
                    },
                    "files": [
                        {
                            "name": "model.onnx",
                            "sha256": _EXAMPLE_MODEL_SHA,
                            "size": 1187,
                        },
                        {
                            "name": "manifest.json",
                            "sha256": _EXAMPLE_MANIFEST_SHA,
                            "size": 642,
                        },
                    ],
                    "metrics": {"holdout_auc": 0.571, "holdout_rows": 840.0},
                    "claimed_metrics": {"holdout_auc": 0.58},
                    "measured": [
                        {
                            "variant": "fp32",
                            "metric": "holdout_auc",
                            "value": 0.571,
                            "evaluation_set_id": 2,
                            "evaluation_set_sha256": _EXAMPLE_SET_SHA,
                            "evaluation_set_name": "holdout-2026-q3",
                        }
                    ],
                    "warnings": [],
                    "checks": {},
                    "content_sha256": _EXAMPLE_SET_SHA,
                    "evaluation_window": "2026-07-01..2026-09-30",
                    "created_by": "alice",
                    "created_at": _EXAMPLE_TIME,
                    "aliases": ["production"],
                }
            ]
        }
    )

    model_name: str
    """Registered model name."""
    version: int
    """Version number: 1, 2, 3… in push order."""
    kind: ModelKind
    """`sentiment` or `predictor`."""
    manifest: dict[str, Any]
    """The stored manifest, with `name` and `version` set to the registered ones."""
    files: list[FileRead]
    """Every stored file of the version, `manifest.json` included."""
    metrics: dict[str, float]
    """What the registry measured for the variant the services serve (int8 when configured and
    present, else fp32) on the active evaluation set of the kind; empty until it has one."""
    claimed_metrics: dict[str, float] = Field(default_factory=dict)
    """The metrics the manifest claims; shown for comparison, never gated on."""
    measured: list[MeasuredRead] = Field(default_factory=list)
    """Every metric the registry measured for this version, per variant and evaluation set."""
    warnings: list[str] = Field(default_factory=list)
    """Things to know before promoting it, such as a claim far above the measurement."""
    checks: dict[str, Any] = Field(default_factory=dict)
    """What the push's checks recorded beyond metrics: parity per variant, label probes."""
    content_sha256: str | None = None
    """Identity of the pushed content; pushing identical content again returns this version."""
    evaluation_window: str | None
    """What the manifest says its claimed metrics were measured on (lineage only)."""
    created_by: str
    """Name of the API key that pushed it."""
    created_at: dt.datetime
    """When it was pushed (UTC)."""
    description: str = ""
    """What this version is; editable after the push."""
    archived_at: dt.datetime | None = None
    """When it was archived (never promotable again, still downloadable), or null."""
    archived_by: str | None = None
    """Name of the API key that archived it."""
    archive_reason: str | None = None
    """Why it was archived."""
    aliases: list[str]
    """Aliases currently pointing at this version."""


class AliasUpdate(BaseModel):
    """A request to point an alias at a version."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"version": 3, "reason": "better holdout AUC on the 2026 Q3 window"},
                {"version": 2, "reason": "hotfix: version 3 mis-scores halts", "force": True},
            ],
            # Force needs a reason: the rule the route enforces (it refuses a blank one too).
            "if": {"properties": {"force": {"const": True}}, "required": ["force"]},
            "then": {"properties": {"reason": {"minLength": 1}}, "required": ["reason"]},
        },
    )

    version: int = Field(ge=1, le=MAX_INT32)
    """Version the alias should point at."""
    reason: str = Field(default="", max_length=2000)
    """Why; kept in the audit log. Required, not blank, when `force` is true."""
    force: bool = False
    """Skip the production metric gate (needs a reason; audited as forced)."""


class RollbackCreate(BaseModel):
    """A request to send `production` back to the version that held it before its last change."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "version 3 drifts on today's data"}]},
    )

    reason: str = Field(min_length=1, max_length=2000)
    """Why; kept in the audit log."""


class AliasChangeRead(BaseModel):
    """One move of an alias, as kept in the audit log."""

    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [_EXAMPLE_CHANGE]}
    )

    id: int
    """Audit entry id; later changes have larger ids."""
    model_name: str
    """Registered model name."""
    alias: str
    """Alias that moved."""
    action: AliasAction
    """`promote` (set to a chosen version), `rollback` or `delete` (the alias was removed)."""
    from_version: int | None
    """Version it pointed at before, or null if it was unset."""
    to_version: int | None
    """Version it points at after, or null once deleted."""
    actor: str
    """Name of the API key that moved it."""
    reason: str
    """Why, as given by the actor."""
    forced: bool
    """Whether the production metric gate was skipped."""
    at: dt.datetime
    """When it moved (UTC)."""


class AliasAtRead(BaseModel):
    """Which version held an alias at a point in time."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model_name": "baseline-predictor",
                    "alias": "production",
                    "time": _EXAMPLE_TIME,
                    "version": 3,
                }
            ]
        }
    )

    model_name: str
    """Registered model name."""
    alias: str
    """Alias asked about."""
    time: dt.datetime
    """The moment asked about (UTC)."""
    version: int | None
    """Version the alias pointed at then, or null if it was unset."""
