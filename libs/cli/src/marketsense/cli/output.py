"""Where commands write: results to stdout; progress and errors to stderr, one line per error."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape

console = Console()
"""Results: tables, ids, JSON."""
err = Console(stderr=True)
"""Progress bars, status lines and errors."""

ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="MARKETSENSE_API_KEY",
        help="API key; prefer the environment variable, which keeps it out of shell history.",
        show_default=False,
    ),
]
"""The key a command sends to a service's API."""
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a summary.")]
"""Whether a command prints its result as JSON."""


def fail(message: str) -> typer.Exit:
    """Print one line saying what to fix and return the exit (code 1) to raise."""
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code=1)


def print_json(value: BaseModel | Sequence[BaseModel]) -> None:
    """An API model, or a list of them, as indented JSON on stdout."""
    data: Any = (
        value.model_dump(mode="json")
        if isinstance(value, BaseModel)
        else [item.model_dump(mode="json") for item in value]
    )
    typer.echo(json.dumps(data, indent=2))
