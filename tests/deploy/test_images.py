"""Every service's image, built from the one Dockerfile with that service's build arguments: its
install step works outside Docker, its runtime stage is what the deployment expects (non-root, no
build tools, the service's own port and name), and skaffold builds it."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from marketsense.common.serve import DEFAULT_PORTS, SERVICES
from tests.deploy.image_support import (
    DOCKERFILE,
    ROOT,
    artifacts,
    build_args,
    environment,
    image,
    instruction,
    render,
)

pytestmark = pytest.mark.timeout(600)

ENTRYPOINT = ["python", "-m", "marketsense.common.serve"]

TRAINING_PACKAGES = ["torch", "transformers", "marketsense.modelkit"]
"""What the retraining image alone carries: it trains challengers."""

# Runs the image's entry point with uvicorn.run replaced, and reports what it would have served
# and whether the heavy packages only the training and CLI side need came along.
PROBE = """
import importlib.util, json, runpy, sys
from unittest import mock
import uvicorn
with mock.patch.object(uvicorn, "run") as run:
    runpy.run_module(sys.argv[1], run_name="__main__", alter_sys=True)
[call] = run.call_args_list
heavy = ("torch", "transformers", "marketsense.modelkit", "marketsense.cli")
print(json.dumps({
    "app": call.args[0].__module__,
    "host": call.kwargs["host"],
    "port": call.kwargs["port"],
    "heavy": [m for m in heavy if importlib.util.find_spec(m)],
}))
"""


def install_command(service: str) -> list[str]:
    """The `uv sync` a service's build stage runs, without BuildKit's cache mount."""
    [run] = [r for r in instruction(image(service)[0], "RUN") if "uv sync" in r]
    return shlex.split(run[run.index("uv sync") :])


def declared_arguments() -> set[str]:
    """The names of every ARG in the Dockerfile, in any stage."""
    return {
        shlex.split(arg)[0].partition("=")[0]
        for stage in render({})
        for arg in instruction(stage, "ARG")
    }


def test_skaffold_builds_each_image_from_the_one_dockerfile_with_its_service_and_port() -> None:
    assert set(artifacts()) == {f"marketsense-{service}" for service in SERVICES}
    for service in SERVICES:
        artifact = artifacts()[f"marketsense-{service}"]
        assert (ROOT / artifact.get("context", ".")) == ROOT, service
        assert (ROOT / artifact["docker"]["dockerfile"]) == DOCKERFILE, service
        assert build_args(service) == {"SERVICE": service, "PORT": str(DEFAULT_PORTS[service])}
    assert DOCKERFILE.is_file()
    # The builder only warns about a build argument no ARG declares, so a misspelt one would pass.
    assert declared_arguments() == {"SERVICE", "PORT"}
    assert sorted(ROOT.glob("services/*/Dockerfile")) == []


@pytest.mark.parametrize("service", SERVICES)
def test_runtime_stage_runs_the_service_unprivileged_on_its_port_without_build_tools(
    service: str,
) -> None:
    build, runtime = image(service)

    [user] = instruction(runtime, "USER")
    assert user.split(":")[0] not in {"0", "root"}, user
    assert instruction(runtime, "EXPOSE") == [str(DEFAULT_PORTS[service])]
    assert [json.loads(e) for e in instruction(runtime, "ENTRYPOINT")] == [ENTRYPOINT]
    env = environment(runtime)
    assert env["MARKETSENSE_PORT"] == str(DEFAULT_PORTS[service])
    assert env["MARKETSENSE_HOST"] == "0.0.0.0"
    assert env["MARKETSENSE_HOME"] == "/tmp/marketsense"
    # Only the built virtualenv crosses over: no sources, no uv, no compiler.
    assert instruction(runtime, "COPY") == ["--from=build /app/.venv /app/.venv"]
    assert all("apt-get" not in run and "uv " not in run for run in instruction(runtime, "RUN"))
    assert f"--package marketsense-{service}" in " ".join(instruction(build, "RUN"))


@pytest.mark.parametrize("service", SERVICES)
def test_runtime_stage_names_the_service_its_build_argument_names(service: str) -> None:
    runtime = image(service)[-1]
    elsewhere = render({"SERVICE": "elsewhere", "PORT": "1"})[-1]

    assert environment(runtime)["MARKETSENSE_SERVICE"] == build_args(service)["SERVICE"]
    assert environment(elsewhere)["MARKETSENSE_SERVICE"] == "elsewhere"


@pytest.mark.parametrize("missing", [["SERVICE"], ["PORT"], ["SERVICE", "PORT"]])
def test_build_stage_stops_without_a_service_or_a_port(missing: list[str]) -> None:
    given = {k: v for k, v in build_args("prediction").items() if k not in missing}

    def check(args: dict[str, str]) -> subprocess.CompletedProcess[str]:
        """The build stage's first RUN (the arguments' check), as its shell runs it."""
        run = instruction(render(args)[0], "RUN")[0]
        env = {"PATH": os.environ["PATH"]}
        return subprocess.run(
            ["/bin/sh", "-c", run], env=env, capture_output=True, text=True, check=False
        )

    refused, built = check(given), check(build_args("prediction"))

    assert refused.returncode != 0
    assert "--build-arg SERVICE=<service> --build-arg PORT=<port>" in refused.stderr
    assert built.returncode == 0, built.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_install_step_gives_a_virtualenv_that_serves_the_service_without_torch(
    service: str, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON_DOWNLOADS": "never"}
    installed = subprocess.run(
        install_command(service), cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert installed.returncode == 0, installed.stderr[-3000:]

    # The entry point as the image runs it: its command, with the image's variables.
    [entrypoint] = [json.loads(e) for e in instruction(image(service)[-1], "ENTRYPOINT")]
    assert entrypoint[:2] == ["python", "-m"]
    ours = {k: v for k, v in os.environ.items() if not k.startswith("MARKETSENSE_")}
    baked = {k: v for k, v in environment(image(service)[-1]).items() if "$" not in v}
    probed = subprocess.run(
        [str(venv / "bin" / "python"), "-c", PROBE, *entrypoint[2:]],
        cwd=tmp_path,
        env={**ours, **baked},
        capture_output=True,
        text=True,
        check=False,
    )
    assert probed.returncode == 0, probed.stderr[-3000:]
    assert json.loads(probed.stdout) == {
        "app": f"marketsense.{service}.app",
        "host": "0.0.0.0",
        "port": DEFAULT_PORTS[service],
        "heavy": TRAINING_PACKAGES if service == "retraining" else [],
    }, f"{service}'s image would serve or carry {probed.stdout}"
