"""API models of the evaluation sets the registry scores versions on."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from marketsense.models.kinds import ModelKind

SET_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
"""An evaluation set's name: letters, digits, dot, dash and underscore, at most 128."""

_EXAMPLE_SET: dict[str, JsonValue] = {
    "id": 2,
    "kind": "predictor",
    "name": "runs-2026-10-01-2026-11-30",
    "sha256": "9f2c" + "0" * 60,
    "size": 81234,
    "rows": 840,
    "source": "features of finished runs with as_of in 2026-10-01..2026-11-30",
    "created_by": "ops-admin",
    "created_at": "2026-12-01T08:00:00Z",
    "active": True,
}


class EvaluationSetRead(BaseModel):
    """An evaluation set: what it is, its hash, and whether versions are measured on it now."""

    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_EXAMPLE_SET]})

    id: int
    """The set's id, which each measured metric records."""
    kind: ModelKind
    """`sentiment` (labelled texts) or `predictor` (feature rows and outcomes)."""
    name: str
    sha256: str
    """Hex sha256 of the set's bytes, as `GET /v1/evaluation-sets/{id}/data` returns them."""
    size: int
    """Bytes."""
    rows: int
    source: str
    """Where the rows came from."""
    created_by: str
    """The key that added the set."""
    created_at: dt.datetime
    active: bool = False
    """Whether this is the newest set of its kind, the one versions are measured on now."""


class EvaluationSetPageRead(BaseModel):
    """A page of evaluation sets, newest first."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [_EXAMPLE_SET], "next_cursor": None}]}
    )

    items: list[EvaluationSetRead]
    next_cursor: str | None
    """Pass as `cursor` to get the next page; null on the last page."""


class PredictorSetFromRuns(BaseModel):
    """A window of stored runs to build a predictor evaluation set from."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"start": "2026-10-01", "end": "2026-11-30"}]},
    )

    start: dt.date
    """First day (a run's as_of) whose features are included."""
    end: dt.date
    """Last day included; its outcome needs the next session's stored bars."""
    name: str | None = Field(default=None, pattern=SET_NAME_PATTERN)
    """The set's name; default `runs-<start>-<end>`."""
