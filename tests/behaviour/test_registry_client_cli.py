"""The registry client and the `marketsense models` / `keys` commands against a served registry."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner, Result

from marketsense.cli.main import app as cli
from marketsense.common.api_client import ApiError
from marketsense.common.store import store_from_settings
from marketsense.models.bundles import pack_bundle
from marketsense.registry.app import build_app
from marketsense.registry.client import ChecksumMismatchError, RegistryClient
from marketsense.registry.config import RegistrySettings
from tests.artifacts import small_predictor
from tests.conftest import INTEGRATION
from tests.registry_support import registry_settings


@dataclass(frozen=True)
class Registry:
    """A registry served on loopback and where its state lives."""

    url: str
    database_url: str
    settings: RegistrySettings


@dataclass(frozen=True)
class Keys:
    """One key of each role, made with `marketsense keys create`."""

    reader: str
    publisher: str
    approver: str


@pytest.fixture(params=["sqlite-file", pytest.param("postgres-s3", marks=INTEGRATION)])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    """The real registry app under uvicorn in a thread, on a free loopback port."""
    if request.param == "postgres-s3":
        database_url: str = request.getfixturevalue("pg_database_url")
        store_url = f"s3://marketsense-test/{uuid.uuid4().hex[:10]}"
    else:
        database_url = f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"
        store_url = (tmp_path / "objects").as_uri()
    settings = registry_settings(
        home=tmp_path / "home",
        database_url=database_url,
        store_url=store_url,
        # Revocations take effect at once, so a test can see them without waiting.
        api_key_cache_seconds=0,
    )
    # A socket listening before the server starts: early requests queue instead of failing.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(
        uvicorn.Config(build_app(settings), log_config=None, access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        # Answered once startup (storage, migrations on SQLite) has finished.
        assert httpx.get(f"{url}/healthz", timeout=60).status_code == 200
        yield Registry(url=url, database_url=database_url, settings=settings)
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()
    assert not thread.is_alive(), "the registry did not shut down"


def run(
    registry: Registry, key: str | None, *args: str, env: dict[str, str] | None = None
) -> Result:
    """Invoke `marketsense ARGS` against the registry; the key must never appear in any output."""
    environment = {
        "MARKETSENSE_REGISTRY_URL": registry.url,
        "MARKETSENSE_DATABASE_URL": registry.database_url,
        "MARKETSENSE_API_KEY": key or "",
        **(env or {}),
    }
    result = CliRunner().invoke(cli, list(args), env=environment)
    if key:
        assert key not in result.stdout + result.stderr
    return result


def one_line_error(result: Result) -> str:
    """The single stderr line of a failed command."""
    assert result.exit_code == 1, result.stdout + result.stderr
    text = result.stderr.strip()
    assert text.startswith("error:"), text
    assert "\n" not in text, text
    return text


@pytest.fixture
def keys(registry: Registry) -> Keys:
    """A key of each role, under names no other test uses."""
    made = {}
    for role in ("reader", "publisher", "approver"):
        result = run(
            registry, None, "keys", "create", f"{role}-{uuid.uuid4().hex[:6]}", "--role", role
        )
        assert result.exit_code == 0, result.stderr
        made[role] = result.stdout.strip()
    return Keys(**made)


MakePredictor = Callable[[float], Path]


@pytest.fixture
def make_predictor(tmp_path: Path) -> MakePredictor:
    """Write predictor artifact folders whose manifests claim the given holdout AUC."""
    return lambda auc: small_predictor(tmp_path / f"predictor-{uuid.uuid4().hex[:6]}", auc=auc)


def model_name() -> str:
    """A model name no other test uses (the PostgreSQL database is shared by the session)."""
    return f"predictor-{uuid.uuid4().hex[:8]}"


def push(registry: Registry, keys: Keys, name: str, folder: Path) -> int:
    """Push a folder through the CLI (registering the model if needed); the version it became."""
    result = run(registry, keys.publisher, "models", "push", name, str(folder), "--create")
    assert result.exit_code == 0, result.stderr
    with RegistryClient(registry.url, keys.reader) as client:
        return max(v.version for v in client.list_versions(name))


def tamper(registry: Registry, key: str) -> None:
    """Overwrite a stored object behind the registry's back, as damage at rest would."""

    async def go() -> None:
        store = store_from_settings(registry.settings)
        await store.start()
        try:
            data = await store.read_key(key)
            await store.put(key, data[:-8] + b"tampered")
        finally:
            await store.close()

    asyncio.run(go())


def production(registry: Registry, keys: Keys, name: str) -> int | None:
    """The version `production` names, read through the API."""
    with RegistryClient(registry.url, keys.reader) as client:
        return client.get_model(name).aliases.get("production")


# Keys


def test_keys_create_prints_the_key_once_and_the_registry_accepts_it(registry: Registry) -> None:
    name = f"ci-{uuid.uuid4().hex[:6]}"
    created = run(registry, None, "keys", "create", name, "--role", "reader")
    assert created.exit_code == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("msk_")
    assert "\n" not in key
    assert "shown only this once" in created.stderr

    listed = run(registry, key, "models", "list", "--json")
    assert listed.exit_code == 0, listed.stderr
    assert isinstance(json.loads(listed.stdout), list)

    again = run(registry, None, "keys", "create", name, "--role", "approver")
    assert "already exists" in one_line_error(again)


def test_keys_list_shows_names_roles_and_revocations_but_never_secrets(registry: Registry) -> None:
    name = f"ops-{uuid.uuid4().hex[:6]}"
    key = run(registry, None, "keys", "create", name, "--role", "approver").stdout.strip()
    hashed = hashlib.sha256(key.encode()).hexdigest()

    revoked = run(registry, None, "keys", "revoke", name)
    assert revoked.exit_code == 0, revoked.stderr
    listed = run(registry, None, "keys", "list", "--json")
    table = run(registry, None, "keys", "list")

    assert listed.exit_code == 0
    assert table.exit_code == 0
    (row,) = [row for row in json.loads(listed.stdout) if row["name"] == name]
    assert row["role"] == "approver"
    assert row["revoked_at"] is not None
    assert set(row) == {"name", "role", "created_at", "revoked_at"}
    assert name in table.stdout
    for output in (listed.stdout, table.stdout):
        assert key not in output
        assert hashed not in output


def test_a_revoked_key_is_refused_with_one_line(registry: Registry) -> None:
    name = f"gone-{uuid.uuid4().hex[:6]}"
    key = run(registry, None, "keys", "create", name, "--role", "reader").stdout.strip()
    assert run(registry, key, "models", "list").exit_code == 0

    assert run(registry, None, "keys", "revoke", name).exit_code == 0

    message = one_line_error(run(registry, key, "models", "list"))
    assert "unknown or revoked API key" in message
    assert "MARKETSENSE_API_KEY" in message
    assert "no live key" in one_line_error(run(registry, None, "keys", "revoke", name))


def test_keys_create_from_an_environment_variable_stores_that_key_without_printing_it(
    registry: Registry,
) -> None:
    secret = f"msk_from_a_secret_manager_{uuid.uuid4().hex}"
    name = f"vault-{uuid.uuid4().hex[:6]}"
    result = run(
        registry,
        None,
        "keys",
        "create",
        name,
        "--role",
        "reader",
        "--key-env",
        "KEPT_KEY",
        env={"KEPT_KEY": secret},
    )
    assert result.exit_code == 0, result.stderr
    assert secret not in result.stdout + result.stderr
    assert run(registry, secret, "models", "list").exit_code == 0

    missing = run(registry, None, "keys", "create", "x", "--role", "reader", "--key-env", "NOPE")
    assert "NOPE is not set" in one_line_error(missing)


# Push, list, show, download


def test_push_list_show_and_download_round_trip(
    registry: Registry, keys: Keys, make_predictor: MakePredictor, tmp_path: Path
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
    assert "holdout_auc 0.6100" in pushed.stdout

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
    assert detail["metrics"]["holdout_auc"] == pytest.approx(0.61)
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
    registry: Registry, keys: Keys, make_predictor: MakePredictor
) -> None:
    name = model_name()
    result = run(registry, keys.publisher, "models", "push", name, str(make_predictor(0.6)))
    message = one_line_error(result)
    assert f"no model named '{name}'" in message
    assert "--create" in message
    with (
        RegistryClient(registry.url, keys.reader) as client,
        pytest.raises(ApiError) as raised,
    ):
        client.get_model(name)
    assert raised.value.status == 404


def test_push_refused_by_validation_shows_the_registrys_reason(
    registry: Registry, keys: Keys, tmp_path: Path
) -> None:
    name = model_name()
    folder = small_predictor(tmp_path / "predictor", input_name="not_the_input")

    message = one_line_error(
        run(registry, keys.publisher, "models", "push", name, str(folder), "--create")
    )
    assert "not_the_input" in message
    assert "422" in message
    with RegistryClient(registry.url, keys.reader) as client:
        assert client.get_model(name).latest_version is None


def test_client_reports_upload_and_download_progress_to_the_last_byte(
    registry: Registry, keys: Keys, make_predictor: MakePredictor, tmp_path: Path
) -> None:
    name = model_name()
    folder = make_predictor(0.6)
    uploads: list[tuple[int, int]] = []
    downloads: list[tuple[int, int]] = []
    with RegistryClient(registry.url, keys.publisher) as client:
        client.create_model(name, "predictor")
        version = client.push(name, folder, on_progress=lambda *p: uploads.append(p))
        got = client.download(
            name, version.version, tmp_path / "out", on_progress=lambda *p: downloads.append(p)
        )

    bundle_size = len(pack_bundle(folder))
    assert uploads[-1] == (bundle_size, bundle_size)
    assert [done for done, _ in uploads] == sorted(done for done, _ in uploads)
    total = sum(f.size for f in got.files)
    assert downloads[-1] == (total, total)
    assert [done for done, _ in downloads] == sorted(done for done, _ in downloads)


# Promotion, the gate, rollback, history


def test_promote_passes_the_gate_refuses_a_worse_version_and_accepts_it_forced(
    registry: Registry, keys: Keys, make_predictor: MakePredictor
) -> None:
    name = model_name()
    good = push(registry, keys, name, make_predictor(0.62))
    worse = push(registry, keys, name, make_predictor(0.55))

    first = run(registry, keys.approver, "models", "promote", name, str(good), "--reason", "first")
    assert first.exit_code == 0, first.stderr
    assert f"production of {name} moved: unset -> version {good}" in first.stdout
    assert production(registry, keys, name) == good

    refused = one_line_error(run(registry, keys.approver, "models", "promote", name, str(worse)))
    assert "0.5500" in refused
    assert "0.6200" in refused
    assert "--force --reason" in refused
    assert "force: true" not in refused
    assert production(registry, keys, name) == good

    unexplained = run(registry, keys.approver, "models", "promote", name, str(worse), "--force")
    assert "--reason" in one_line_error(unexplained)

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
    registry: Registry, keys: Keys, make_predictor: MakePredictor
) -> None:
    name = model_name()
    version = push(registry, keys, name, make_predictor(0.6))

    message = one_line_error(run(registry, keys.publisher, "models", "promote", name, str(version)))
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
    registry: Registry, keys: Keys, make_predictor: MakePredictor
) -> None:
    name = model_name()
    one = push(registry, keys, name, make_predictor(0.58))
    two = push(registry, keys, name, make_predictor(0.60))
    assert "--reason" in one_line_error(
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
    registry: Registry, keys: Keys, make_predictor: MakePredictor
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
    assert "not an ISO time" in one_line_error(bad)


def test_download_by_alias_gets_the_production_version(
    registry: Registry, keys: Keys, make_predictor: MakePredictor, tmp_path: Path
) -> None:
    name = model_name()
    folder = make_predictor(0.6)
    version = push(registry, keys, name, folder)
    assert "no alias" in one_line_error(
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
    assert "not an empty folder" in one_line_error(again)


# Damage in transit and at rest


def test_download_refuses_a_file_overwritten_in_the_store_and_writes_nothing(
    registry: Registry, keys: Keys, make_predictor: MakePredictor, tmp_path: Path
) -> None:
    name = model_name()
    version = push(registry, keys, name, make_predictor(0.6))
    tamper(registry, f"models/{name}/{version}/model.onnx")

    out = tmp_path / "out"
    message = one_line_error(
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


def test_client_detects_bytes_changed_in_transit(
    registry: Registry, keys: Keys, make_predictor: MakePredictor, tmp_path: Path
) -> None:
    name = model_name()
    version = push(registry, keys, name, make_predictor(0.6))

    class FlipOneByte(httpx.HTTPTransport):
        """Damages the body of every file download, as a faulty network path would."""

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = super().handle_request(request)
            if "/files/" not in request.url.path:
                return response
            body = bytearray(response.read())
            body[len(body) // 2] ^= 0xFF
            return httpx.Response(
                response.status_code, headers=response.headers, content=bytes(body)
            )

    with (
        RegistryClient(registry.url, keys.reader, transport=FlipOneByte()) as client,
        pytest.raises(ChecksumMismatchError) as raised,
    ):
        client.download(name, version, tmp_path / "out")
    assert "nothing was written" in str(raised.value)
    assert not (tmp_path / "out").exists()


# Wrong key, no key, registry down


def test_a_wrong_key_fails_with_one_line_and_is_not_printed(registry: Registry) -> None:
    wrong = f"msk_{uuid.uuid4().hex}{uuid.uuid4().hex}"
    result = run(registry, wrong, "models", "list")
    message = one_line_error(result)
    assert "unknown or revoked API key" in message
    assert "401" in message


def test_no_key_fails_before_calling_the_registry(registry: Registry) -> None:
    message = one_line_error(run(registry, None, "models", "list"))
    assert "MARKETSENSE_API_KEY" in message


def test_registry_down_fails_with_one_line_naming_the_url(registry: Registry) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = f"http://127.0.0.1:{port}"  # bound then released: nothing listens there now
    result = run(
        registry, "msk_" + "k" * 40, "models", "list", env={"MARKETSENSE_REGISTRY_URL": down}
    )
    message = one_line_error(result)
    assert down in message
    assert "is the registry running" in message
    with RegistryClient(down, "msk_" + "k" * 40) as client, pytest.raises(ApiError) as raised:
        client.list_models()
    assert raised.value.status is None
    assert down in raised.value.detail


def test_client_errors_carry_the_status_and_the_servers_detail(
    registry: Registry, keys: Keys
) -> None:
    name = model_name()
    with RegistryClient(registry.url, keys.publisher) as client:
        client.create_model(name, "predictor")
        with pytest.raises(ApiError) as exists:
            client.create_model(name, "predictor")
        with pytest.raises(ApiError) as unknown:
            client.get_version(name, 7)
        with pytest.raises(ApiError) as forbidden:
            client.rollback(name, "no approver")
        with pytest.raises(ValueError, match="no timezone"):
            client.alias_at(name, "production", dt.datetime(2026, 11, 20, 12))
        page = client.audit(model=name, limit=5)
    assert exists.value.status == 409
    assert name in exists.value.detail
    assert unknown.value.status == 404
    assert "7" in unknown.value.detail
    assert forbidden.value.status == 403
    assert "approver" in forbidden.value.detail
    assert page.items == []
    assert page.next_cursor is None


def test_help_does_not_show_the_api_key_from_the_environment(registry: Registry) -> None:
    secret = f"msk_{uuid.uuid4().hex}"
    for command in ("push", "list", "show", "promote", "rollback", "history", "download"):
        result = run(registry, secret, "models", command, "--help")
        assert result.exit_code == 0
        assert "MARKETSENSE_API_KEY" in result.stdout
