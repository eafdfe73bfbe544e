"""The `marketsense` command itself: its groups, `db upgrade`, `serve`, `events asyncapi`,
`models train-baseline` and the options `demo` accepts."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from typer.testing import CliRunner, Result

from marketsense.cli.main import app as cli
from marketsense.common.db.migrate import alembic_config
from marketsense.common.events import PAYLOAD_TYPES
from marketsense.common.serve import SERVICES
from tests.cli_support import one_error_line


def _run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def test_help_names_every_command_and_group() -> None:
    result = _run("--help", env={"COLUMNS": "200"})

    assert result.exit_code == 0
    for command in ("demo", "serve", "db", "models", "events", "keys", "run", "dlq"):
        assert f" {command} " in result.stdout, command


def test_db_upgrade_migrates_the_configured_database_to_the_newest_revision(
    database_url: str,
) -> None:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()

    first = _run("db", "upgrade", env={"MARKETSENSE_DATABASE_URL": database_url})
    again = _run("db", "upgrade", env={"MARKETSENSE_DATABASE_URL": database_url})

    assert first.exit_code == 0, first.stderr
    assert first.stdout.strip() == f"database at revision {head}"
    assert again.stdout == first.stdout


def test_db_upgrade_of_a_database_that_is_not_there_says_what_to_check() -> None:
    with socket.socket() as sock:  # a port nothing listens on once the socket closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql+asyncpg://app:secret@127.0.0.1:{port}/app"

    line = one_error_line(_run("db", "upgrade", env={"MARKETSENSE_DATABASE_URL": url}))

    assert line.startswith("error: cannot reach the database: ")
    assert line.endswith("; check MARKETSENSE_DATABASE_URL")


def test_serve_refuses_an_unknown_service_naming_the_choices() -> None:
    line = one_error_line(_run("serve", "billing"))

    assert line == f"error: unknown service 'billing': choose one of {', '.join(SERVICES)}"


def test_events_asyncapi_prints_the_catalogue_or_writes_it_to_a_file(tmp_path: Path) -> None:
    printed = _run("events", "asyncapi")
    out = tmp_path / "asyncapi.json"
    written = _run("events", "asyncapi", "--out", str(out))

    assert printed.exit_code == 0
    document = json.loads(printed.stdout)
    topics = {payload.topic for payload in PAYLOAD_TYPES.values()}
    assert set(document["channels"]) == topics | {f"{topic}.dlq" for topic in topics}
    assert (written.exit_code, written.stdout) == (0, "")
    assert out.read_text() == printed.stdout


def test_train_baseline_without_a_sentiment_model_says_how_to_build_one(tmp_path: Path) -> None:
    missing = tmp_path / "no-sentiment"

    line = one_error_line(
        _run(
            "models",
            "train-baseline",
            "--out",
            str(tmp_path / "p"),
            "--sentiment-model",
            str(missing),
        )
    )

    assert f"no sentiment model at {missing}" in line
    assert "marketsense models build-sentiment --out DIR" in line
    assert not (tmp_path / "p").exists()


def test_train_baseline_writes_a_predictor_and_prints_its_metrics(
    tmp_path: Path, sentiment_model_dir: Path
) -> None:
    out = tmp_path / "predictor"

    result = _run(
        "models",
        "train-baseline",
        "--out",
        str(out),
        "--sentiment-model",
        str(sentiment_model_dir),
        "--symbols",
        "5",
        "--as-of",
        "2026-11-23",
    )

    assert result.exit_code == 0, result.stderr
    metrics = json.loads(result.stdout[result.stdout.index("{") :])
    manifest = json.loads((out / "manifest.json").read_text())
    assert metrics == manifest["metrics"]
    assert manifest["training"]["symbols"] == "5"
    assert manifest["training"]["holdout_end"] < "2026-11-23"
    assert (out / "model.onnx").stat().st_size > 0
    holdout = tmp_path / "predictor-holdout.parquet"
    assert holdout.stat().st_size > 0
    assert f"marketsense models evaluation-set add predictor {holdout}" in result.stderr


@pytest.mark.parametrize("symbols", ["0", "501", "many"])
def test_demo_refuses_a_symbol_count_it_cannot_run(tmp_path: Path, symbols: str) -> None:
    result = _run("demo", "--symbols", symbols, "--home", str(tmp_path / "home"))

    assert result.exit_code == 2
    assert "--symbols" in result.stderr
    assert not (tmp_path / "home").exists()
