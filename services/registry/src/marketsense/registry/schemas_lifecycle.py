"""Registry API models of a version's lifecycle and the views across versions: pages, archive,
alias deletion, description edits, comparison and the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from marketsense.registry.schemas import AliasChangeRead, FileRead, ModelRead, VersionRead

_EXAMPLE_TIME = "2026-11-25T14:30:00Z"
_EXAMPLE_SHA = "9f2c4e1b7a0d3c5e8f6a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60"
_EXAMPLE_OTHER_SHA = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"
_CURSOR_DOC = "Pass as `cursor` to get the next page; null on the last page."
_EXAMPLE_CURSOR = "Mw"
_EXAMPLE_METRIC: dict[str, Any] = {
    "evaluation_set_id": 1,
    "evaluation_set_name": "heldout-300",
    "evaluation_set_sha256": _EXAMPLE_SHA,
    "variant": "int8",
    "metric": "heldout_macro_f1",
    "a": 0.79,
    "b": 0.815,
    "difference": 0.025,
}
_EXAMPLE_LINEAGE: dict[str, Any] = {
    "version": 2,
    "created_by": "alice",
    "created_at": _EXAMPLE_TIME,
    "built_at": _EXAMPLE_TIME,
    "content_sha256": _EXAMPLE_SHA,
    "evaluation_window": None,
    "source": {"base_model": "ProsusAI/finbert"},
    "description": "",
    "archived_at": None,
}
_EXAMPLE_FILE_DIFFERENCE: dict[str, Any] = {
    "name": "model.int8.onnx",
    "change": "changed",
    "a": {"name": "model.int8.onnx", "sha256": _EXAMPLE_SHA, "size": 1187},
    "b": {"name": "model.int8.onnx", "sha256": _EXAMPLE_OTHER_SHA, "size": 1190},
}
_EXAMPLE_AUDIT: dict[str, Any] = {
    "id": 41,
    "model_name": "finbert",
    "action": "archive",
    "version": 2,
    "alias": None,
    "from_version": None,
    "to_version": None,
    "actor": "alice",
    "reason": "its manifest claimed a macro-F1 the registry could not reproduce",
    "detail": "",
    "forced": False,
    "at": _EXAMPLE_TIME,
}


class ModelPageRead(BaseModel):
    """A page of registered models, by name."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [], "next_cursor": None}]})

    items: list[ModelRead]
    """Models, by name."""
    next_cursor: str | None
    """Pass as `cursor` to get the next page; null on the last page."""


class VersionPageRead(BaseModel):
    """A page of a model's versions, newest first."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [], "next_cursor": _EXAMPLE_CURSOR}]}
    )

    items: list[VersionRead]
    """Versions, newest first."""
    next_cursor: str | None
    """Pass as `cursor` to get the next page; null on the last page."""


class AliasChangePageRead(BaseModel):
    """A page of an alias's moves, newest first."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [], "next_cursor": None}]})

    items: list[AliasChangeRead]
    """Moves, newest first."""
    next_cursor: str | None
    """Pass as `cursor` to get the next page; null on the last page."""


class ArchiveCreate(BaseModel):
    """A request to archive a version: never promotable again, still readable."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "metrics in its manifest were inflated"}]},
    )

    reason: str = Field(min_length=1, max_length=2000)
    """Why; kept on the version and in the audit log."""


class AliasDelete(BaseModel):
    """A request to remove an alias (any but `production`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "the staging trial is over"}]},
    )

    reason: str = Field(min_length=1, max_length=2000)
    """Why; kept in the alias history and the audit log."""


class DescriptionUpdate(BaseModel):
    """A new description for a model or a version."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "description": "FinBERT fine-tuned on 2026 headlines; labels positive, "
                    "negative, neutral.",
                    "reason": "name the training data",
                }
            ]
        },
    )

    description: str = Field(max_length=2000)
    """The new description; replaces the old one."""
    reason: str = Field(default="", max_length=2000)
    """Why, for the audit log."""


class MetricComparison(BaseModel):
    """One metric both versions were measured on, with the same evaluation set and variant."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE_METRIC]})

    evaluation_set_id: int
    """Evaluation set both were scored on."""
    evaluation_set_name: str
    """Its name."""
    evaluation_set_sha256: str
    """Hex sha256 of its bytes."""
    variant: str
    """Graph variant scored: `fp32` or `int8`."""
    metric: str
    """Metric name, such as `heldout_macro_f1`."""
    a: float
    """Value for version `a`."""
    b: float
    """Value for version `b`."""
    difference: float
    """`b - a`."""


class VersionLineage(BaseModel):
    """Where a version came from: who pushed it, from what, and what it is."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE_LINEAGE]})

    version: int
    """Version number."""
    created_by: str
    """Name of the API key that pushed it."""
    created_at: dt.datetime
    """When it was pushed (UTC)."""
    built_at: str | None
    """The manifest's `created_at`: when the bundle was built."""
    content_sha256: str | None
    """Hash of its files and manifest content; equal for identical pushes."""
    evaluation_window: str | None
    """What the pusher says its claimed metrics were measured on."""
    source: dict[str, Any]
    """The manifest's `source` (sentiment) or `training` (predictor) record."""
    description: str
    """What this version is."""
    archived_at: dt.datetime | None
    """When it was archived, or null."""


FileChange = Literal["same", "changed", "added", "removed"]
"""How a file differs from version `a` to version `b`."""


class FileDifference(BaseModel):
    """One file name in either version, with both sides."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE_FILE_DIFFERENCE]})

    name: str
    """File name."""
    change: FileChange
    """`same` bytes, `changed` bytes, `added` in `b`, or `removed` from `a`."""
    a: FileRead | None
    """The file in version `a`, or null."""
    b: FileRead | None
    """The file in version `b`, or null."""


class CompareRead(BaseModel):
    """Two versions side by side: measured metrics, lineage, manifest fields and files."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model_name": "finbert",
                    "a": _EXAMPLE_LINEAGE | {"version": 1},
                    "b": _EXAMPLE_LINEAGE,
                    "metrics": [_EXAMPLE_METRIC],
                    "manifest_fields_changed": ["labels", "metrics"],
                    "files": [_EXAMPLE_FILE_DIFFERENCE],
                }
            ]
        }
    )

    model_name: str
    """Registered model name."""
    a: VersionLineage
    """Version `a`."""
    b: VersionLineage
    """Version `b`."""
    metrics: list[MetricComparison]
    """Metrics measured on an evaluation set and variant both versions were scored on."""
    manifest_fields_changed: list[str]
    """Manifest fields whose values differ (`name` and `version` left out)."""
    files: list[FileDifference]
    """Every file of either version, by name."""


class AuditEntryRead(BaseModel):
    """One entry of the registry's audit log: what happened, to what, who did it and why."""

    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [_EXAMPLE_AUDIT]}
    )

    id: int
    """Entry id; later entries have larger ids."""
    model_name: str
    """Model the entry is about."""
    action: str
    """`push`, `push_repeated`, `push_refused`, `promote`, `promote_refused`, `rollback`,
    `alias_deleted`, `archive`, `description_edited` or `evaluation_set_added`."""
    version: int | None
    """Version concerned: pushed, archived, edited, or that an alias moved to."""
    alias: str | None
    """Alias concerned, for alias moves, refusals and deletions."""
    from_version: int | None
    """Version the alias pointed at before, for alias moves and deletions."""
    to_version: int | None
    """Version the alias points at after a move (`promote`, `rollback`); null otherwise."""
    actor: str
    """Name of the API key that acted."""
    reason: str
    """Why, as the actor gave it."""
    detail: str
    """What the registry said: a refusal's message, a push's warnings, an edit's old text."""
    forced: bool
    """Whether the production metric gate was skipped."""
    at: dt.datetime
    """When (UTC)."""


class AuditPageRead(BaseModel):
    """A page of the audit log, newest first."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [_EXAMPLE_AUDIT], "next_cursor": "NDE"}]}
    )

    items: list[AuditEntryRead]
    """Entries, newest first."""
    next_cursor: str | None
    """Pass as `cursor` to get the next page; null on the last page."""
