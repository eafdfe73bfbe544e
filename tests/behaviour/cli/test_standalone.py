"""`marketsense standalone`'s parts that decide: the ports each service gets, a port already
taken refused by name, and the admin key made once and pointed to after."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from marketsense.cli.standalone import (
    ADMIN_KEY_FILE,
    StandaloneRefused,
    admin_key_note,
    bound_sockets,
    standalone_ports,
)
from marketsense.common.auth import Role
from marketsense.common.runtime import Runtime
from marketsense.common.serve import DEFAULT_PORTS
from marketsense.common.settings import CommonSettings


def test_each_service_gets_its_usual_port_moved_by_the_offset_unless_a_flag_names_it() -> None:
    assert standalone_ports(0, []) == DEFAULT_PORTS
    moved = standalone_ports(100, ["prediction=9999"])
    assert moved["prediction"] == 9999
    assert moved["orchestrator"] == DEFAULT_PORTS["orchestrator"] + 100
    assert moved["retraining"] == DEFAULT_PORTS["retraining"] + 100


@pytest.mark.parametrize(
    ("offset", "flags", "named"),
    [
        (0, ["billing=9000"], "SERVICE one of orchestrator"),
        (0, ["prediction"], "the port must be 1-65535"),
        (0, ["prediction=70000"], "the port must be 1-65535"),
        (60_000, [], "--port-offset 60000 moves ports out of 1-65535"),
        (0, ["prediction=8000"], "two services on one port"),
    ],
)
def test_a_port_that_cannot_be_served_is_refused_naming_the_flag(
    offset: int, flags: list[str], named: str
) -> None:
    with pytest.raises(StandaloneRefused, match=named):
        standalone_ports(offset, flags)


def test_a_taken_port_is_refused_naming_the_service_and_the_flags_that_move_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with (
            pytest.raises(StandaloneRefused) as refused,
            bound_sockets("127.0.0.1", {"registry": port}),
        ):
            pass
    assert str(refused.value).startswith(f"cannot listen on 127.0.0.1:{port} for registry:")
    assert "--port registry=PORT" in str(refused.value)
    assert "--port-offset" in str(refused.value)


async def test_the_admin_key_is_made_once_shown_once_then_pointed_to(tmp_path: Path) -> None:
    runtime = Runtime(CommonSettings(home=tmp_path), service="standalone")
    await runtime.start_storage()
    path = tmp_path / ADMIN_KEY_FILE
    try:
        first = await admin_key_note(runtime, tmp_path)
        key = path.read_text().strip()
        mode = stat.S_IMODE(path.stat().st_mode)
        second = await admin_key_note(runtime, tmp_path)
        path.unlink()
        gone = await admin_key_note(runtime, tmp_path)
        principal = await runtime.keyring.principal(key)
    finally:
        await runtime.store.close()
        await runtime.database.dispose()

    assert key.startswith("msk_")
    assert key in first
    assert mode == 0o600, "only its owner reads the key"
    assert principal is not None
    assert principal.role == Role.APPROVER
    assert key not in second
    assert f"$(cat {path})" in second
    assert key not in gone
    assert "keys create NAME --role approver" in gone
