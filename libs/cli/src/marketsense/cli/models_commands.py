"""`marketsense models push | list | show | promote | rollback | history | download`.

They talk to the registry API (MARKETSENSE_REGISTRY_URL) with an API key (MARKETSENSE_API_KEY),
which is sent only in its header: never printed, never logged.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Column, Table

from marketsense.cli.output import ApiKey, AsJson, console, err, fail, print_json
from marketsense.common.api_client import ApiError
from marketsense.common.serve import DEFAULT_PORTS
from marketsense.models.files import MANIFEST_FILE
from marketsense.models.kinds import PRIMARY_METRIC, ModelKind, as_kind
from marketsense.models.versions import PRODUCTION
from marketsense.registry.client import (
    ChecksumMismatchError,
    ProgressCallback,
    RegistryClient,
)
from marketsense.registry.schemas import AliasChangeRead, VersionRead

DEFAULT_REGISTRY_URL = f"http://127.0.0.1:{DEFAULT_PORTS['registry']}"
_API_FORCE_HINT = "; to move it anyway"


RegistryUrl = Annotated[
    str,
    typer.Option("--url", envvar="MARKETSENSE_REGISTRY_URL", help="Registry base URL."),
]
AliasOption = Annotated[str, typer.Option(help="Alias to move or read.")]


def register(models_app: typer.Typer) -> None:
    """Add the registry commands to the `models` command group."""
    models_app.command("push")(push)
    models_app.command("list")(list_models)
    models_app.command("show")(show)
    models_app.command("promote")(promote)
    models_app.command("rollback")(rollback)
    models_app.command("history")(history)
    models_app.command("download")(download)


def push(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    folder: Annotated[
        Path, typer.Argument(help="Artifact folder: manifest.json and the model's files.")
    ],
    kind: Annotated[
        ModelKind | None,
        typer.Option(help="Kind to register with --create (default: the manifest's kind)."),
    ] = None,
    description: Annotated[str, typer.Option(help="Description to register with --create.")] = "",
    create: Annotated[
        bool, typer.Option("--create", help="Register the model first if it does not exist.")
    ] = False,
    url: RegistryUrl = DEFAULT_REGISTRY_URL,
    api_key: ApiKey = None,
) -> None:
    """Push an artifact folder as the model's next version; the registry validates it first."""
    if not (folder / MANIFEST_FILE).is_file():
        raise fail(f"{folder} has no {MANIFEST_FILE}: pass an artifact folder")
    if not create and (kind is not None or description):
        raise fail("--kind and --description describe a new model: add --create")
    with _registry(url, api_key) as client:
        if create:
            _ensure_model(client, name, kind or _manifest_kind(folder), description)
        with _transfer(f"uploading {name}") as report:
            try:
                pushed = client.push_folder(name, folder, on_progress=report)
            except ApiError as exc:
                if exc.status == 404 and not create:
                    raise ApiError(404, f"{exc.detail}; add --create to register it") from exc
                raise
    version = pushed.version
    if pushed.created:
        headline = f"pushed {escape(name)} version {version.version}"
    else:
        headline = (
            f"{escape(name)} already has these files and manifest as version {version.version}"
        )
    console.print(
        f"{headline}: measured by the registry: {_metric_summary(version)}", soft_wrap=True
    )
    _print_push_report(version)


def list_models(
    as_json: AsJson = False, url: RegistryUrl = DEFAULT_REGISTRY_URL, api_key: ApiKey = None
) -> None:
    """List registered models with their aliases and newest version."""
    with _registry(url, api_key) as client:
        models = client.list_models()
    if as_json:
        print_json(models)
        return
    # Names are what people copy into the next command: never wrapped, the description gives way.
    table = Table(Column("name", no_wrap=True), "kind", "latest", "aliases", "description")
    for model in models:
        table.add_row(
            escape(model.name),
            model.kind,
            str(model.latest_version or "-"),
            _aliases(model.aliases) or "-",
            escape(model.description),
        )
    console.print(table)


def show(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[int | None, typer.Option(min=1, help="Show this version in detail.")] = None,
    as_json: AsJson = False,
    url: RegistryUrl = DEFAULT_REGISTRY_URL,
    api_key: ApiKey = None,
) -> None:
    """Show a model and its versions, or one version's metrics, files and aliases."""
    with _registry(url, api_key) as client:
        if version is not None:
            _show_version(client.get_version(name, version), as_json=as_json)
            return
        model = client.get_model(name)
        versions = client.list_versions(name)
    if as_json:
        payload = {
            "model": model.model_dump(mode="json"),
            "versions": [v.model_dump(mode="json") for v in versions],
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    console.print(
        f"[bold]{escape(model.name)}[/] ({model.kind}), registered by {escape(model.created_by)} "
        f"at {_when(model.created_at)}; aliases: {_aliases(model.aliases) or 'none'}",
        soft_wrap=True,
    )
    if model.description:
        console.print(escape(model.description), soft_wrap=True)
    table = Table("version", "created", "by", PRIMARY_METRIC[model.kind], "window", "aliases")
    for item in versions:
        metric = item.metrics.get(PRIMARY_METRIC[model.kind])
        table.add_row(
            str(item.version),
            _when(item.created_at),
            escape(item.created_by),
            "-" if metric is None else f"{metric:.4f}",
            escape(item.evaluation_window or "-"),
            ", ".join(item.aliases),
        )
    console.print(table)


def promote(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[int, typer.Argument(min=1, help="Version the alias should point at.")],
    alias: AliasOption = PRODUCTION,
    reason: Annotated[str, typer.Option(help="Why; kept in the audit log.")] = "",
    force: Annotated[
        bool,
        typer.Option("--force", help="Skip the production metric gate (needs --reason)."),
    ] = False,
    url: RegistryUrl = DEFAULT_REGISTRY_URL,
    api_key: ApiKey = None,
) -> None:
    """Point an alias (production by default) at a version; production passes the metric gate."""
    if force and not reason.strip():
        raise fail("--force needs --reason TEXT saying why the gate is skipped")
    with _registry(url, api_key) as client:
        try:
            change = client.set_alias(name, alias, version, reason=reason, force=force)
        except ApiError as exc:
            if exc.status == 409 and alias == PRODUCTION and not force and _gate_refused(exc):
                # The registry's hint speaks of the API's fields; say it with this command's flags.
                detail = exc.detail.split(_API_FORCE_HINT)[0]
                raise ApiError(
                    409, f"{detail}; to promote anyway add --force --reason TEXT"
                ) from exc
            raise
    _print_change(change)


def rollback(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    reason: Annotated[str, typer.Option(help="Why; kept in the audit log.")],
    url: RegistryUrl = DEFAULT_REGISTRY_URL,
    api_key: ApiKey = None,
) -> None:
    """Send production back to the version that held it before its last change."""
    if not reason.strip():
        raise fail("--reason must say why production is rolled back")
    with _registry(url, api_key) as client:
        change = client.rollback(name, reason)
    _print_change(change)


def history(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    alias: AliasOption = PRODUCTION,
    at: Annotated[
        str | None,
        typer.Option(
            help="Only say which version held the alias at this ISO time "
            "(e.g. 2026-11-25T14:30:00+00:00; no timezone means UTC)."
        ),
    ] = None,
    as_json: AsJson = False,
    url: RegistryUrl = DEFAULT_REGISTRY_URL,
    api_key: ApiKey = None,
) -> None:
    """List an alias's changes, newest first, or which version it named at a moment (--at)."""
    moment = _parse_time(at) if at is not None else None
    with _registry(url, api_key) as client:
        if moment is not None:
            held = client.alias_at(name, alias, moment)
            if as_json:
                print_json(held)
            else:
                which = "unset" if held.version is None else f"version {held.version}"
                console.print(
                    f"{escape(alias)} of {escape(name)} at {_when(held.time)}: {which}",
                    soft_wrap=True,
                )
            return
        changes = client.history(name, alias)
    if as_json:
        print_json(changes)
        return
    table = Table("at", "action", "from", "to", "actor", "forced", "reason")
    for change in changes:
        table.add_row(
            _when(change.at),
            change.action,
            str(change.from_version or "-"),
            str(change.to_version),
            escape(change.actor),
            "yes" if change.forced else "",
            escape(change.reason),
        )
    console.print(table)


def download(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    out: Annotated[Path, typer.Option(help="Folder to create with the version's files.")],
    version: Annotated[int | None, typer.Option(min=1, help="Version to download.")] = None,
    alias: Annotated[
        str | None, typer.Option(help="Download the version this alias names (default production).")
    ] = None,
    url: RegistryUrl = DEFAULT_REGISTRY_URL,
    api_key: ApiKey = None,
) -> None:
    """Download a version's files, each checked against its recorded sha256, into a new folder."""
    if version is not None and alias is not None:
        raise fail("pass --version or --alias, not both")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise fail(f"--out {out} already exists and is not an empty folder")
    with _registry(url, api_key) as client:
        number = version or client.get_alias(name, alias or PRODUCTION).version
        with _transfer(f"downloading {name} v{number}") as report:
            got = client.download(name, number, out, on_progress=report)
    console.print(
        f"downloaded {escape(name)} version {got.version} "
        f"({', '.join(f.name for f in got.files)}) to {escape(str(out))}",
        soft_wrap=True,
    )


@contextmanager
def _registry(url: str, api_key: str | None) -> Iterator[RegistryClient]:
    """A client for `url`; any refusal or local failure becomes one error line and exit code 1."""
    if not api_key:
        raise fail(
            "no API key: set MARKETSENSE_API_KEY or pass --api-key "
            "(an operator makes one with `marketsense keys create`)"
        )
    try:
        with RegistryClient(url, api_key) as client:
            yield client
    except ChecksumMismatchError as exc:
        raise fail(
            f"{exc.detail}; try again, and tell the registry's operator if it persists"
        ) from exc
    except ApiError as exc:
        raise fail(_explain(exc, url)) from exc
    except (OSError, ValueError) as exc:
        raise fail(" ".join(str(exc).split())) from exc


def _explain(exc: ApiError, url: str) -> str:
    """The registry's answer, plus what to do about the usual causes."""
    if exc.status is None:
        return (
            f"{exc.detail}; is the registry running? "
            "(`marketsense serve registry`; point --url or MARKETSENSE_REGISTRY_URL at it)"
        )
    if exc.status == 401:
        return f"{exc.detail} (401 from {url}): check --api-key or MARKETSENSE_API_KEY"
    return f"{exc.detail} ({exc.status} from {url})"


def _gate_refused(exc: ApiError) -> bool:
    """Whether a 409 is the metric gate's (forcing helps), not an alias already in place."""
    return "already" not in exc.detail


def _ensure_model(client: RegistryClient, name: str, kind: ModelKind, description: str) -> None:
    """Register `name` unless it exists; an existing model of another kind is an error."""
    try:
        model = client.get_model(name)
    except ApiError as exc:
        if exc.status != 404:
            raise
        client.create_model(name, kind, description)
        console.print(f"registered {escape(name)} ({kind})", soft_wrap=True)
        return
    if model.kind != kind:
        raise fail(f"{name} is registered as a {model.kind} model, not {kind}")


def _manifest_kind(folder: Path) -> ModelKind:
    """The kind a manifest declares, for --create without --kind."""
    try:
        declared = json.loads((folder / MANIFEST_FILE).read_text()).get("kind")
        return as_kind(str(declared))
    except (ValueError, AttributeError) as exc:
        raise fail(f"{folder}/{MANIFEST_FILE} declares no kind I know: pass --kind") from exc


@contextmanager
def _transfer(description: str) -> Iterator[ProgressCallback]:
    """A progress bar on stderr (stdout stays for results) and the callback that moves it.

    The bar shows only on a terminal and vanishes when done: logs and pipes get the outcome line.
    """
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as progress:
        task = progress.add_task(escape(description), total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield report


def _show_version(version: VersionRead, *, as_json: bool) -> None:
    if as_json:
        print_json(version)
        return
    console.print(
        f"[bold]{escape(version.model_name)}[/] version {version.version} ({version.kind}), "
        f"pushed by {escape(version.created_by)} at {_when(version.created_at)}; "
        f"aliases: {', '.join(version.aliases) or 'none'}",
        soft_wrap=True,
    )
    console.print(f"metrics: {_metric_summary(version)}", soft_wrap=True)
    # One line per file rather than a table, so narrow terminals do not cut the checksums.
    for stored in version.files:
        console.print(
            f"  {escape(stored.name)}  {stored.size:,} bytes  sha256 {stored.sha256}",
            soft_wrap=True,
        )


def _print_change(change: AliasChangeRead) -> None:
    before = "unset" if change.from_version is None else f"version {change.from_version}"
    verb = "rolled back" if change.action == "rollback" else "moved"
    forced = " (gate skipped: forced)" if change.forced else ""
    console.print(
        f"{escape(change.alias)} of {escape(change.model_name)} {verb}: {before} -> version "
        f"{change.to_version}{forced}",
        soft_wrap=True,
    )


def _metric_summary(version: VersionRead) -> str:
    """The gate's metric first, then the others, and the evaluation set they were measured on."""
    primary = PRIMARY_METRIC[version.kind]
    order = sorted(version.metrics, key=lambda key: (key != primary, key))
    metrics = ", ".join(f"{key} {version.metrics[key]:.4f}" for key in order)
    sets = sorted({m.evaluation_set_name for m in version.measured})
    where = f" on evaluation set {', '.join(sets)}" if sets else ""
    return f"{metrics or 'no metrics'}{where}"


def _print_push_report(version: VersionRead) -> None:
    """The metrics the manifest claimed beside those the registry measured, and its warnings."""
    claimed, warnings = version.claimed_metrics, version.warnings
    if claimed:
        console.print(
            "claimed by the manifest: "
            + ", ".join(f"{key} {value:.4f}" for key, value in sorted(claimed.items())),
            soft_wrap=True,
        )
    for warning in warnings:
        console.print(f"[yellow]warning[/]: {escape(warning)}", soft_wrap=True)


def _aliases(aliases: dict[str, int]) -> str:
    return ", ".join(f"{alias}={number}" for alias, number in sorted(aliases.items()))


def _when(time: dt.datetime) -> str:
    if time.tzinfo is None:  # the registry speaks UTC
        time = time.replace(tzinfo=dt.UTC)
    return time.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _parse_time(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise fail(f"--at {text!r} is not an ISO time such as 2026-11-25T14:30:00+00:00") from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
