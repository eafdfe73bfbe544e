"""`python -m marketsense.common.serve`, each image's entry point: it serves the service its
variable names, on the host and port the settings or arguments choose, or exits 2 saying why."""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from marketsense.common import app as app_module
from marketsense.common.http_protocol import HeaderTimeoutProtocol
from marketsense.common.serve import DEFAULT_PORTS, SERVICES, main, serve


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, dict[str, Any]]]:
    """What `uvicorn.run` was called with, instead of serving; no host or port in the env."""
    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append((app, kwargs)))
    for name in ("MARKETSENSE_HOST", "MARKETSENSE_PORT", "MARKETSENSE_SERVICE"):
        monkeypatch.delenv(name, raising=False)
    return calls


@pytest.mark.parametrize("value", [None, "", "nope"])
def test_serve_module_without_a_known_service_exits_2_with_one_line_naming_the_variable(
    value: str | None,
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MARKETSENSE_SERVICE"}
    if value is not None:
        env["MARKETSENSE_SERVICE"] = value

    done = subprocess.run(
        [sys.executable, "-m", "marketsense.common.serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("MARKETSENSE_SERVICE ")
    assert ", ".join(SERVICES) in line
    assert ("'nope'" in line) == (value == "nope")


def test_each_service_has_its_own_port() -> None:
    assert sorted(DEFAULT_PORTS.values()) == list(range(8000, 8000 + len(SERVICES)))
    assert set(DEFAULT_PORTS) == set(SERVICES)


@pytest.mark.parametrize("service", SERVICES)
def test_serve_runs_the_services_app_factory_on_loopback_and_its_port(
    served: list[tuple[Any, dict[str, Any]]], service: str
) -> None:
    serve(service)

    [(app, options)] = served
    protocol = options.pop("http")
    assert app is importlib.import_module(f"marketsense.{service}.app").build_app
    assert options == {
        "factory": True,
        "host": "127.0.0.1",
        "port": DEFAULT_PORTS[service],
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": 30,
        "timeout_keep_alive": 5,
    }
    assert issubclass(protocol, HeaderTimeoutProtocol)


def test_the_settings_move_the_keep_alive_and_header_timeouts(
    served: list[tuple[Any, dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARKETSENSE_HTTP_KEEP_ALIVE_SECONDS", "9")
    monkeypatch.setenv("MARKETSENSE_HTTP_HEADER_TIMEOUT_SECONDS", "2.5")

    serve("prediction")

    [(_, options)] = served
    assert options["timeout_keep_alive"] == 9
    # A loop of its own: other tests may have closed the thread's current one.
    loop = asyncio.new_event_loop()
    try:
        protocol = options["http"](
            config=uvicorn.Config(app="marketsense.monitoring.app:build_app"),
            server_state=ServerState(),
            app_state={},
            _loop=loop,
        )
    finally:
        loop.close()
    assert protocol.header_timeout == 2.5


def test_the_environment_moves_host_and_port_and_arguments_move_them_again(
    served: list[tuple[Any, dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARKETSENSE_HOST", "0.0.0.0")
    monkeypatch.setenv("MARKETSENSE_PORT", "9100")

    serve("registry")
    serve("registry", host="10.0.0.7", port=9200)

    assert [(o["host"], o["port"]) for _, o in served] == [("0.0.0.0", 9100), ("10.0.0.7", 9200)]


def test_serving_an_unknown_service_names_the_ones_there_are(
    served: list[tuple[Any, dict[str, Any]]],
) -> None:
    with pytest.raises(SystemExit) as caught:
        serve("scheduler")

    assert str(caught.value) == f"unknown service 'scheduler': choose one of {', '.join(SERVICES)}"
    assert served == []


def test_main_serves_the_service_the_variable_names(
    served: list[tuple[Any, dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARKETSENSE_SERVICE", "monitoring")

    main()

    [(app, options)] = served
    assert app.__module__ == "marketsense.monitoring.app"
    assert options["port"] == DEFAULT_PORTS["monitoring"]


@pytest.mark.parametrize("kafka", [None, "127.0.0.1:9"])
def test_a_service_alone_on_the_in_process_bus_warns_that_it_reaches_only_its_own_process(
    served: list[tuple[Any, dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    kafka: str | None,
) -> None:
    monkeypatch.setenv("MARKETSENSE_HOME", str(tmp_path))
    if kafka is None:
        monkeypatch.delenv("MARKETSENSE_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    else:
        monkeypatch.setenv("MARKETSENSE_KAFKA_BOOTSTRAP_SERVERS", kafka)
    # The factory configures logging for a whole process; here caplog keeps the records.
    monkeypatch.setattr(app_module, "configure_logging", lambda **_: None)
    serve("orchestrator")
    [(factory, _)] = served

    with caplog.at_level(logging.WARNING, logger=app_module.__name__):
        factory()

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    if kafka is None:
        [warning] = warnings
        assert warning.startswith("orchestrator runs on the in-process bus")
        assert "`marketsense standalone`" in warning
        assert "MARKETSENSE_KAFKA_BOOTSTRAP_SERVERS" in warning
    else:
        assert warnings == []
