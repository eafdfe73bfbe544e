"""`marketsense keys create|list|revoke` against the database of a served registry, whose API
then accepts or refuses the keys."""

from __future__ import annotations

import hashlib
import json
import uuid

from tests.cli_support import one_error_line
from tests.served_registry_support import (
    ServedRegistry,
    run,
)


def test_keys_create_prints_the_key_once_and_the_registry_accepts_it(
    registry: ServedRegistry,
) -> None:
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
    assert "already exists" in one_error_line(again)


def test_keys_list_shows_names_roles_and_revocations_but_never_secrets(
    registry: ServedRegistry,
) -> None:
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


def test_a_revoked_key_is_refused_with_one_line(registry: ServedRegistry) -> None:
    name = f"gone-{uuid.uuid4().hex[:6]}"
    key = run(registry, None, "keys", "create", name, "--role", "reader").stdout.strip()
    assert run(registry, key, "models", "list").exit_code == 0

    assert run(registry, None, "keys", "revoke", name).exit_code == 0

    message = one_error_line(run(registry, key, "models", "list"))
    assert "unknown or revoked API key" in message
    assert "MARKETSENSE_API_KEY" in message
    assert "no live key" in one_error_line(run(registry, None, "keys", "revoke", name))


def test_keys_create_from_an_environment_variable_stores_that_key_without_printing_it(
    registry: ServedRegistry,
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
    assert "NOPE is not set" in one_error_line(missing)
