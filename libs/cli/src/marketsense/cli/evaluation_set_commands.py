"""`marketsense models evaluation-set add | list | from-runs`: the sets the registry measures
versions on, over its API (MARKETSENSE_REGISTRY_URL, key in MARKETSENSE_API_KEY)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from marketsense.cli.models_commands import DEFAULT_REGISTRY_URL, RegistryUrl
from marketsense.cli.output import ApiKey, AsJson, console, fail, print_json
from marketsense.common.api_client import ApiClient, ApiError
from marketsense.models.evaluation import MAX_SET_BYTES
from marketsense.models.kinds import ModelKind
from marketsense.registry.schemas_evaluation import (
    EvaluationSetPageRead,
    EvaluationSetRead,
)

MEDIA_TYPES: dict[str, str] = {
    "sentiment": "text/csv",
    "predictor": "application/vnd.apache.parquet",
}
"""The Content-Type the registry expects for a set of each kind."""

evaluation_set_app = typer.Typer(help="Evaluation sets the registry measures versions on.")


class EvaluationSetClient(ApiClient):
    """The registry's evaluation set routes."""

    service = "the registry"

    def add(self, kind: ModelKind, name: str, data: bytes) -> tuple[EvaluationSetRead, bool]:
        """Upload a set; with whether it is new (False: the registry had these bytes)."""
        response = self._send(
            "POST",
            "/v1/evaluation-sets",
            params={"kind": kind, "name": name},
            content=data,
            headers={"Content-Type": MEDIA_TYPES[kind]},
        )
        return EvaluationSetRead.model_validate_json(response.content), response.status_code == 201

    def page(self, kind: ModelKind | None, limit: int, cursor: str | None) -> EvaluationSetPageRead:
        """One page of sets, newest first."""
        params: dict[str, str | int] = {"limit": limit}
        if kind is not None:
            params["kind"] = kind
        if cursor is not None:
            params["cursor"] = cursor
        return self._call(EvaluationSetPageRead, "GET", "/v1/evaluation-sets", params=params)

    def from_runs(
        self, start: dt.date, end: dt.date, name: str | None
    ) -> tuple[EvaluationSetRead, bool]:
        """Have the registry build a predictor set from its stored runs."""
        body = {"start": start.isoformat(), "end": end.isoformat(), "name": name}
        response = self._send("POST", "/v1/evaluation-sets/predictor/from-runs", json=body)
        return EvaluationSetRead.model_validate_json(response.content), response.status_code == 201


def register(models_app: typer.Typer) -> None:
    """Add `evaluation-set` to the `models` command group."""
    models_app.add_typer(evaluation_set_app, name="evaluation-set")


@evaluation_set_app.command("add")
def add(
    kind: Annotated[ModelKind, typer.Argument(help="Which models the set evaluates.")],
    path: Annotated[
        Path,
        typer.Argument(
            help="sentiment: a CSV with the header text,label; predictor: a Parquet table with "
            "symbol, date, label and the feature columns.",
            exists=True,
            dir_okay=False,
        ),
    ],
    name: Annotated[str | None, typer.Option(help="The set's name (default: file stem).")] = None,
    url: RegistryUrl = DEFAULT_REGISTRY_URL,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Add an evaluation set (approver); versions of its kind are then measured on it."""
    if path.stat().st_size > MAX_SET_BYTES:
        raise fail(f"{path} is over the registry's {MAX_SET_BYTES >> 20} MiB evaluation set limit")
    data = path.read_bytes()
    try:
        with EvaluationSetClient(url, api_key) as client:
            added, new = client.add(kind, name or path.stem, data)
    except ApiError as error:
        raise fail(str(error)) from error
    local = hashlib.sha256(data).hexdigest()
    if added.sha256 != local:
        raise fail(
            f"the registry stored sha256 {added.sha256} but {path} has {local}; add it again"
        )
    _report(added, new, as_json)


@evaluation_set_app.command("from-runs")
def from_runs(
    start: Annotated[
        dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="First run day (as_of) included.")
    ],
    end: Annotated[
        dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="Last run day (as_of) included.")
    ],
    name: Annotated[str | None, typer.Option(help="The set's name.")] = None,
    url: RegistryUrl = DEFAULT_REGISTRY_URL,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Have the registry build a predictor set from the features its finished runs stored in
    the window and the outcomes of the sessions after them (approver)."""
    try:
        with EvaluationSetClient(url, api_key) as client:
            added, new = client.from_runs(start.date(), end.date(), name)
    except ApiError as error:
        raise fail(str(error)) from error
    _report(added, new, as_json)


@evaluation_set_app.command("list")
def list_sets(
    kind: Annotated[ModelKind | None, typer.Option(help="Only sets of this kind.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Sets per page.")] = 50,
    cursor: Annotated[str | None, typer.Option(help="Next page: the cursor printed.")] = None,
    url: RegistryUrl = DEFAULT_REGISTRY_URL,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Evaluation sets, newest first; `*` marks the set each kind is measured on now."""
    try:
        with EvaluationSetClient(url, api_key) as client:
            page = client.page(kind, limit, cursor)
    except ApiError as error:
        raise fail(str(error)) from error
    if as_json:
        print_json(page)
        return
    table = Table("id", "kind", "name", "rows", "sha256", "added", "by", "")
    for item in page.items:
        table.add_row(
            str(item.id),
            item.kind,
            escape(item.name),
            str(item.rows),
            item.sha256[:12],
            item.created_at.strftime("%Y-%m-%d %H:%M"),
            escape(item.created_by),
            "*" if item.active else "",
        )
    console.print(table)
    if page.next_cursor is not None:
        console.print(f"more: --cursor {page.next_cursor}")


def _report(added: EvaluationSetRead, new: bool, as_json: bool) -> None:
    if as_json:
        print_json(added)
        return
    what = "added" if new else "already stored as"
    console.print(
        f"{what} evaluation set {added.id}: {added.kind} {escape(added.name)}, "
        f"{added.rows} rows, sha256 {added.sha256}",
        soft_wrap=True,
    )
