"""Read the one Dockerfile as the image of one service: the instructions of each stage with that
service's build arguments (from skaffold.yaml) substituted, as the builder would see them."""

from __future__ import annotations

import functools
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
SKAFFOLD = ROOT / "skaffold.yaml"

_REFERENCE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
_UNEXPANDED = ("CMD", "ENTRYPOINT")
"""Instructions that never see build arguments: in exec form nothing expands them. (RUN is
expanded by its shell, from the same arguments and variables, so it is substituted too.)"""


def instructions(path: Path) -> list[str]:
    """A Dockerfile's instructions, continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def keyword(line: str) -> str:
    """An instruction's name, upper-cased."""
    return line.split(None, 1)[0].upper()


def arguments(line: str) -> str:
    """Everything after an instruction's name."""
    return line.split(None, 1)[1]


def substitute(text: str, scope: dict[str, str]) -> str:
    """`text` with `${NAME}` and `$NAME` replaced where NAME is in scope; others left as written."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return scope.get(name, match.group(0))

    return _REFERENCE.sub(value, text)


def declare(
    line: str, build_args: dict[str, str], scope: dict[str, str], inherited: dict[str, str]
) -> None:
    """Add an ARG's names to the scope: each one's build argument, else its default, else the
    value of the same ARG before the first FROM, else empty (as the builder expands it unset)."""
    for declared in shlex.split(arguments(line)):
        name, has_default, default = declared.partition("=")
        fallback = default if has_default else inherited.get(name, "")
        scope[name] = build_args.get(name, fallback)


def assign(line: str, scope: dict[str, str]) -> None:
    """Add an ENV's `NAME=value` pairs (already substituted) to the scope."""
    for pair in shlex.split(arguments(line)):
        name, _, value = pair.partition("=")
        scope[name] = value


def render(build_args: dict[str, str], path: Path = DOCKERFILE) -> list[list[str]]:
    """A Dockerfile's instructions per stage, with the declared ARGs and the ENV values built
    from them substituted, as they are for an image built with `build_args`."""
    stages: list[list[str]] = []
    inherited: dict[str, str] = {}
    scope = inherited
    for line in instructions(path):
        name = keyword(line)
        if name == "FROM":
            # A stage sees none of the stage before; ARGs before the first FROM only by name.
            line = substitute(line, inherited)
            stages.append([])
            scope = {}
        rendered = line if name in _UNEXPANDED else substitute(line, scope)
        if name == "ARG":
            declare(rendered, build_args, scope, inherited if stages else {})
        elif name == "ENV":
            assign(rendered, scope)
        if stages:
            stages[-1].append(rendered)
    return stages


def instruction(stage: list[str], name: str) -> list[str]:
    """The arguments of every `name` instruction in a stage."""
    return [arguments(line) for line in stage if keyword(line) == name]


def environment(stage: list[str]) -> dict[str, str]:
    """The variables a stage's ENV instructions set, last one winning."""
    scope: dict[str, str] = {}
    for line in stage:
        if keyword(line) == "ENV":
            assign(line, scope)
    return scope


@functools.cache
def artifacts() -> dict[str, dict[str, Any]]:
    """skaffold.yaml's build artifacts by image name."""
    config = yaml.safe_load(SKAFFOLD.read_text())
    return {artifact["image"]: artifact for artifact in config["build"]["artifacts"]}


def build_args(service: str) -> dict[str, str]:
    """The build arguments skaffold passes for a service's image."""
    return dict(artifacts()[f"marketsense-{service}"]["docker"].get("buildArgs", {}))


def image(service: str) -> list[list[str]]:
    """A service's image: the Dockerfile's stages rendered with skaffold's arguments for it."""
    return render(build_args(service))
