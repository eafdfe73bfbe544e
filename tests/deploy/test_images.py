"""Every service's image: its install step works outside Docker, its runtime stage is what the
deployment expects (non-root, no build tools, the service's own port), and skaffold builds it."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from marketsense.common.serve import DEFAULT_PORTS, SERVICES

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(600)


def dockerfile(service: str) -> Path:
    """A service's Dockerfile."""
    return REPO / "services" / service / "Dockerfile"


def stages(path: Path) -> list[list[str]]:
    """A Dockerfile's instructions (continuation lines joined, comments dropped), per stage."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    found: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            found.append([])
        found[-1].append(line)
    return found


def instruction(stage: list[str], name: str) -> list[str]:
    """The arguments of every `name` instruction in a stage."""
    return [line.split(None, 1)[1] for line in stage if line.split(None, 1)[0].upper() == name]


def install_command(service: str) -> list[str]:
    """The `uv sync` the build stage runs, without BuildKit's cache mount."""
    [run] = [r for r in instruction(stages(dockerfile(service))[0], "RUN") if "uv sync" in r]
    return shlex.split(run[run.index("uv sync") :])


def test_skaffold_builds_one_image_per_service_from_a_dockerfile_that_exists() -> None:
    config = yaml.safe_load((REPO / "skaffold.yaml").read_text())
    artifacts = {a["image"]: a for a in config["build"]["artifacts"]}

    assert set(artifacts) == {f"marketsense-{service}" for service in SERVICES}
    for image, artifact in artifacts.items():
        path = REPO / artifact.get("context", ".") / artifact["docker"]["dockerfile"]
        assert path.is_file(), f"{image}: {path} does not exist"
        assert path == dockerfile(image.removeprefix("marketsense-"))


@pytest.mark.parametrize("service", SERVICES)
def test_runtime_stage_runs_the_service_unprivileged_on_its_port_without_build_tools(
    service: str,
) -> None:
    build, runtime = stages(dockerfile(service))

    [user] = instruction(runtime, "USER")
    assert user.split(":")[0] not in {"0", "root"}, user
    assert instruction(runtime, "EXPOSE") == [str(DEFAULT_PORTS[service])]
    assert instruction(runtime, "ENTRYPOINT") == [f'["python", "-m", "marketsense.{service}"]']
    env = " ".join(instruction(runtime, "ENV"))
    assert f"MARKETSENSE_PORT={DEFAULT_PORTS[service]}" in env
    assert "MARKETSENSE_HOST=0.0.0.0" in env
    # Only the built virtualenv crosses over: no sources, no uv, no compiler.
    assert instruction(runtime, "COPY") == ["--from=build /app/.venv /app/.venv"]
    assert all("apt-get" not in run and "uv " not in run for run in instruction(runtime, "RUN"))
    assert f"--package marketsense-{service}" in " ".join(instruction(build, "RUN"))


@pytest.mark.parametrize("service", SERVICES)
def test_install_step_gives_a_virtualenv_that_serves_the_service_without_torch(
    service: str, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON_DOWNLOADS": "never"}
    installed = subprocess.run(
        install_command(service), cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    assert installed.returncode == 0, installed.stderr[-3000:]

    probe = (
        f"import importlib.util as u, marketsense.{service}.app as app;"
        "assert callable(app.build_app);"
        "print([m for m in ('torch', 'transformers', 'marketsense.modelkit', 'marketsense.cli')"
        " if u.find_spec(m)])"
    )
    imported = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr[-3000:]
    assert imported.stdout.strip() == "[]", f"{service}'s image would carry {imported.stdout}"
