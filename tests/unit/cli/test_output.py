"""Where commands write: results as JSON on stdout, each error as one line on stderr with exit
code 1, whatever the message holds."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import typer
from pydantic import BaseModel

from marketsense.cli.output import fail, print_json


class Item(BaseModel):
    """A small API model."""

    name: str
    at: dt.datetime
    score: float | None = None


def test_fail_prints_one_line_and_returns_the_exit_to_raise(
    capsys: pytest.CaptureFixture[str],
) -> None:
    exit_ = fail("no API key: set MARKETSENSE_API_KEY")

    out, err = capsys.readouterr()
    assert isinstance(exit_, typer.Exit)
    assert exit_.exit_code == 1
    assert out == ""
    assert err == "error: no API key: set MARKETSENSE_API_KEY\n"


def test_fail_prints_brackets_in_a_message_as_they_are(capsys: pytest.CaptureFixture[str]) -> None:
    # Server details and file names may hold text rich would take for markup.
    fail("bad value [bold]x[/bold] in [red]field[/]")

    assert capsys.readouterr().err == "error: bad value [bold]x[/bold] in [red]field[/]\n"


def test_fail_keeps_a_long_message_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    message = "the registry refused the push: " + "a very long reason " * 20

    fail(message)

    assert capsys.readouterr().err == f"error: {message}\n"


def test_print_json_writes_one_model_or_a_list_as_indented_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    at = dt.datetime(2026, 11, 20, 21, 30, tzinfo=dt.UTC)

    print_json(Item(name="a", at=at, score=0.5))
    single = capsys.readouterr().out
    print_json([Item(name="a", at=at), Item(name="b", at=at, score=1.0)])
    many = capsys.readouterr().out
    print_json([])
    empty = capsys.readouterr().out

    assert json.loads(single) == {"name": "a", "at": "2026-11-20T21:30:00Z", "score": 0.5}
    assert single.startswith('{\n  "name": "a"')
    assert [item["name"] for item in json.loads(many)] == ["a", "b"]
    assert json.loads(many)[0]["score"] is None
    assert json.loads(empty) == []
