"""`marketsense models push|list|show|promote|rollback|history|download` against a served
registry: results on stdout, one error line on stderr, the key never shown."""

from __future__ import annotations

import datetime as dt
import json
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest

from marketsense.common.api_client import ApiError
from marketsense.registry.client import ChecksumMismatchError, Pushed, RegistryClient
from marketsense.registry.schemas import VersionRead
from tests.artifacts import small_predictor
from tests.cli_support import one_error_line
from tests.served_registry_support import (
    Keys,
    MakePredictor,
    ServedRegistry,
    model_name,
    predictor_maker,
    production,
    push,
    run,
    tamper,
)


@pytest.fixture
def make_predictor(tmp_path: Path) -> MakePredictor:
    """Write predictor artifact folders whose manifests claim the given holdout AUC."""
    return predictor_maker(tmp_path)


def test_push_list_show_and_download_round_trip(
    registry: ServedRegistry, keys: Keys, make_predictor: MakePredictor, tmp_path: Path
) -> None:
    name = model_name()
    folder = make_predictor(0.61)

    pushed = run(
        registry,
        keys.publisher,
        "models",
        "push",
        name,
        str(folder),
        "--create",
        "--description",
        "a small test predictor",
    )
    assert pushed.exit_code == 0, pushed.stderr
    assert f"pushed {name} version 1" in pushed.stdout
    with RegistryClient(registry.url, keys.reader) as client:
        measured = client.get_version(name, 1).metrics["holdout_auc"]
    assert f"holdout_auc {measured:.4f}" in pushed.stdout  # the registry's, not the claimed 0.61

    listed = run(registry, keys.reader, "models", "list", "--json")
    (row,) = [m for m in json.loads(listed.stdout) if m["name"] == name]
    assert row["kind"] == "predictor"
    assert row["latest_version"] == 1
    assert row["description"] == "a small test predictor"
    assert name in run(registry, keys.reader, "models", "list").stdout

    shown = json.loads(run(registry, keys.reader, "models", "show", name, "--json").stdout)
    assert [v["version"] for v in shown["versions"]] == [1]
    detail = json.loads(
        run(registry, keys.reader, "models", "show", name, "--version", "1", "--json").stdout
    )
    assert detail["manifest"]["name"] == name
    assert detail["manifest"]["version"] == "1"
    assert detail["claimed_metrics"]["holdout_auc"] == pytest.approx(0.61)
    assert detail["metrics"]["holdout_auc"] == pytest.approx(measured)
    assert {f["name"] for f in detail["files"]} == {"model.onnx", "manifest.json"}
    table = run(registry, keys.reader, "models", "show", name, "--version", "1")
    assert detail["files"][0]["sha256"] in table.stdout

    out = tmp_path / "downloaded"
    fetched = run(
        registry, keys.reader, "models", "download", name, "--version", "1", "--out", str(out)
    )
    assert fetched.exit_code == 0, fetched.stderr
    assert (out / "model.onnx").read_bytes() == (folder / "model.onnx").read_bytes()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest == detail["manifest"]
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model.onnx"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_push_of_an_unregistered_model_says_to_add_create(
    registry: ServedRegistry, keys: Keys, make_predictor: MakePredictor
) -> None:
    name = model_name()
    result = run(registry, keys.publisher, "models", "push", name, str(make_predictor(0.6)))
    message = one_error_line(result)
    assert f"no model named '{name}'" in message
    assert "--create" in message
    with (
        RegistryClient(registry.url, keys.reader) as client,
        pytest.raises(ApiError) as raised,
    ):
        client.get_model(name)
    assert raised.value.status == 404


class _MeasuredVersionRead(VersionRead):
    """A push answer of a registry that measures metrics itself and reports warnings."""

    claimed_metrics: dict[str, float] = {}
    warnings: list[str] = []


def test_push_shows_a_repeated_push_claimed_metrics_and_warnings(
    registry: ServedRegistry,
    keys: Keys,
    make_predictor: MakePredictor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = model_name()
    folder = make_predictor(0.61)
    assert push(registry, keys, name, folder) == 1
    real_push = RegistryClient.push_folder

    def answered_as_repeated(client: RegistryClient, *args: Any, **kwargs: Any) -> Pushed:
        pushed = real_push(client, *args, **kwargs)
        answer = _MeasuredVersionRead.model_validate(
            pushed.version.model_dump()
            | {
                "claimed_metrics": {"holdout_auc": 0.99},
                "warnings": ["claimed holdout_auc 0.9900 is 0.38 above the measured 0.6100"],
            }
        )
        return Pushed(version=answer, created=False)

    monkeypatch.setattr(RegistryClient, "push_folder", answered_as_repeated)
    result = run(registry, keys.publisher, "models", "push", name, str(folder))

    assert result.exit_code == 0, result.stderr
    assert f"{name} already has these files and manifest as version" in result.stdout
    # The gate's metric comes first, as the registry measured it on its own evaluation set.
    assert ": measured by the registry: holdout_auc " in result.stdout
    assert "pushed" not in result.stdout
    assert "claimed by the manifest: holdout_auc 0.9900" in result.stdout
    assert "warning: claimed holdout_auc 0.9900 is 0.38 above the measured" in result.stdout


def test_push_refused_by_validation_shows_the_registrys_reason(
    registry: ServedRegistry, keys: Keys, tmp_path: Path
) -> None:
    name = model_name()
    folder = small_predictor(tmp_path / "predictor", input_name="not_the_input")

    message = one_error_line(
        run(registry, keys.publisher, "models", "push", name, str(folder), "--create")
    )
    assert "not_the_input" in message
    assert "422" in message
    with RegistryClient(registry.url, keys.reader) as client:
        assert client.get_model(name).latest_version is None


def test_promote_passes_the_gate_refuses_a_worse_version_and_accepts_it_forced(
    registry: ServedRegistry, keys: Keys, make_predictor: MakePredictor
) -> None:
    name = model_name()
    good = push(registry, keys, name, make_predictor(0.62))
    worse = push(registry, keys, name, make_predictor(0.55))

    first = run(registry, keys.approver, "models", "promote", name, str(good), "--reason", "first")
    assert first.exit_code == 0, first.stderr
    assert f"production of {name} moved: unset -> version {good}" in first.stdout
    assert production(registry, keys, name) == good

    refused = one_error_line(run(registry, keys.approver, "models", "promote", name, str(worse)))
    with RegistryClient(registry.url, keys.reader) as client:
        measured = [client.get_version(name, v).metrics["holdout_auc"] for v in (worse, good)]
    assert f"holdout_auc {measured[0]:.4f}" in refused
    assert f"{measured[1]:.4f}" in refused
    assert "--force --reason" in refused
    assert "force: true" not in refused
    assert production(registry, keys, name) == good

    unexplained = run(registry, keys.approver, "models", "promote", name, str(worse), "--force")
    assert "--reason" in one_error_line(unexplained)

    forced = run(
        registry,
        keys.approver,
        "models",
        "promote",
        name,
        str(worse),
        "--force",
        "--reason",
        "hotfix for halted symbols",
    )
    assert forced.exit_code == 0, forced.stderr
    assert "forced" in forced.stdout
    assert production(registry, keys, name) == worse

    (latest, *_) = json.loads(
        run(registry, keys.reader, "models", "history", name, "--json").stdout
    )
    assert latest["forced"] is True
    assert latest["reason"] == "hotfix for halted symbols"
    assert (latest["from_version"], latest["to_version"]) == (good, worse)
    assert latest["actor"].startswith("approver-")


def test_promoting_production_needs_the_approver_role(
    registry: ServedRegistry, keys: Keys, make_predictor: MakePredictor
) -> None:
    name = model_name()
    version = push(registry, keys, name, make_predictor(0.6))

    message = one_error_line(run(registry, keys.publisher, "models", "promote", name, str(version)))
    assert "approver" in message
    assert "403" in message
    assert production(registry, keys, name) is None

    staged = run(
        registry, keys.publisher, "models", "promote", name, str(version), "--alias", "staging"
    )
    assert staged.exit_code == 0, staged.stderr
    with RegistryClient(registry.url, keys.reader) as client:
        assert client.get_alias(name, "staging").version == version


def test_rollback_returns_production_to_the_version_before(
    registry: ServedRegistry, keys: Keys, make_predictor: MakePredictor
) -> None:
    name = model_name()
    one = push(registry, keys, name, make_predictor(0.58))
    two = push(registry, keys, name, make_predictor(0.60))
    assert "--reason" in one_error_line(
        run(registry, keys.approver, "models", "rollback", name, "--reason", " ")
    )
    for version in (one, two):
        assert run(registry, keys.approver, "models", "promote", name, str(version)).exit_code == 0

    result = run(registry, keys.approver, "models", "rollback", name, "--reason", "drifts")
    assert result.exit_code == 0, result.stderr
    assert f"rolled back: version {two} -> version {one}" in result.stdout
    assert production(registry, keys, name) == one
    with RegistryClient(registry.url, keys.reader) as client:
        latest = client.history(name)[0]
    assert (latest.action, latest.reason) == ("rollback", "drifts")


def test_history_lists_changes_and_answers_which_version_held_production_at_a_time(
    registry: ServedRegistry, keys: Keys, make_predictor: MakePredictor
) -> None:
    name = model_name()
    one = push(registry, keys, name, make_predictor(0.58))
    two = push(registry, keys, name, make_predictor(0.60))
    for version in (one, two):
        assert run(registry, keys.approver, "models", "promote", name, str(version)).exit_code == 0
    with RegistryClient(registry.url, keys.reader) as client:
        second, first = client.history(name)
    assert (first.to_version, second.to_version) == (one, two)
    between = first.at + (second.at - first.at) / 2
    before = first.at - dt.timedelta(seconds=1)

    def held_at(moment: dt.datetime) -> int | None:
        result = run(
            registry, keys.reader, "models", "history", name, "--at", moment.isoformat(), "--json"
        )
        assert result.exit_code == 0, result.stderr
        version: int | None = json.loads(result.stdout)["version"]
        return version

    assert held_at(between) == one
    assert held_at(second.at + dt.timedelta(seconds=1)) == two
    assert held_at(before) is None
    text = run(registry, keys.reader, "models", "history", name, "--at", between.isoformat())
    assert f"production of {name} at" in text.stdout
    assert f"version {one}" in text.stdout

    table = run(registry, keys.reader, "models", "history", name)
    assert table.exit_code == 0
    assert "promote" in table.stdout
    bad = run(registry, keys.reader, "models", "history", name, "--at", "yesterday")
    assert "not an ISO time" in one_error_line(bad)


def test_download_by_alias_gets_the_production_version(
    registry: ServedRegistry, keys: Keys, make_predictor: MakePredictor, tmp_path: Path
) -> None:
    name = model_name()
    folder = make_predictor(0.6)
    version = push(registry, keys, name, folder)
    assert "no alias" in one_error_line(
        run(registry, keys.reader, "models", "download", name, "--out", str(tmp_path / "none"))
    )
    assert not (tmp_path / "none").exists()
    assert run(registry, keys.approver, "models", "promote", name, str(version)).exit_code == 0

    out = tmp_path / "prod"
    result = run(registry, keys.reader, "models", "download", name, "--out", str(out))
    assert result.exit_code == 0, result.stderr
    assert f"version {version}" in result.stdout
    assert (out / "model.onnx").read_bytes() == (folder / "model.onnx").read_bytes()
    again = run(registry, keys.reader, "models", "download", name, "--out", str(out))
    assert "not an empty folder" in one_error_line(again)


def test_download_refuses_a_file_overwritten_in_the_store_and_writes_nothing(
    registry: ServedRegistry, keys: Keys, make_predictor: MakePredictor, tmp_path: Path
) -> None:
    name = model_name()
    version = push(registry, keys, name, make_predictor(0.6))
    tamper(registry, f"models/{name}/{version}/model.onnx")

    out = tmp_path / "out"
    message = one_error_line(
        run(
            registry,
            keys.reader,
            "models",
            "download",
            name,
            "--version",
            str(version),
            "--out",
            str(out),
        )
    )
    assert "model.onnx" in message
    assert "sha256" in message
    assert not out.exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".out")] == []
    with RegistryClient(registry.url, keys.reader) as client, pytest.raises(ChecksumMismatchError):
        client.download(name, version, out)
    assert not out.exists()


def test_a_wrong_key_fails_with_one_line_and_is_not_printed(registry: ServedRegistry) -> None:
    wrong = f"msk_{uuid.uuid4().hex}{uuid.uuid4().hex}"
    result = run(registry, wrong, "models", "list")
    message = one_error_line(result)
    assert "unknown or revoked API key" in message
    assert "401" in message


def test_no_key_fails_before_calling_the_registry(registry: ServedRegistry) -> None:
    message = one_error_line(run(registry, None, "models", "list"))
    assert "MARKETSENSE_API_KEY" in message


def test_registry_down_fails_with_one_line_naming_the_url(registry: ServedRegistry) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = f"http://127.0.0.1:{port}"  # bound then released: nothing listens there now
    result = run(
        registry, "msk_" + "k" * 40, "models", "list", env={"MARKETSENSE_REGISTRY_URL": down}
    )
    message = one_error_line(result)
    assert down in message
    assert "is the registry running" in message
    with RegistryClient(down, "msk_" + "k" * 40) as client, pytest.raises(ApiError) as raised:
        client.list_models()
    assert raised.value.status is None
    assert down in raised.value.detail


def test_help_does_not_show_the_api_key_from_the_environment(registry: ServedRegistry) -> None:
    secret = f"msk_{uuid.uuid4().hex}"
    for command in ("push", "list", "show", "promote", "rollback", "history", "download"):
        result = run(registry, secret, "models", command, "--help")
        assert result.exit_code == 0
        assert "MARKETSENSE_API_KEY" in result.stdout
