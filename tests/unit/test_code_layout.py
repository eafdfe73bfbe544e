"""The tree keeps its shape: no service imports another, libraries import only those below them,
and functions and modules stay small enough to read."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SERVICES = (
    "ingestion",
    "processing",
    "prediction",
    "monitoring",
    "registry",
    "orchestrator",
    "retraining",
)
"""Packages that run as their own process."""

TRAINING_SERVICES = ("retraining",)
"""Services that train models: they alone may import modelkit, and so carry torch."""

LIBRARY_LAYERS = ("common", "models", "modelkit", "cli")
"""Libraries from the bottom up: each may import only those before it. The CLI is the one place
that puts services together (the one-process pipeline, the demo), so it alone may import them."""

MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 450


def source_files() -> list[Path]:
    """Every Python module of the libraries, services, tests, benchmarks and scripts."""
    roots = [REPO / "libs", REPO / "services", REPO / "tests", REPO / "bench", REPO / "scripts"]
    return sorted(p for root in roots for p in root.rglob("*.py") if ".venv" not in p.parts)


def package_of(path: Path) -> str | None:
    """The `marketsense.<name>` package a source file belongs to, if it is one."""
    parts = path.relative_to(REPO).parts
    if parts[0] in ("libs", "services") and "marketsense" in parts:
        return parts[parts.index("marketsense") + 1]
    return None


def imported_packages(path: Path) -> set[str]:
    """The `marketsense.<name>` packages a module imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "marketsense" and len(parts) > 1:
                found.add(parts[1])
    return found


def allowed_imports(package: str) -> set[str]:
    """What a package may import: itself, the libraries below it, and for the CLI the services."""
    if package in SERVICES:
        allowed = {package, *LIBRARY_LAYERS[:3]}
        return allowed if package in TRAINING_SERVICES else allowed - {"modelkit"}
    layer = LIBRARY_LAYERS.index(package)
    allowed = {package, *LIBRARY_LAYERS[:layer]}
    return allowed | set(SERVICES) if package == "cli" else allowed


def test_no_service_imports_another_and_libraries_import_only_those_below() -> None:
    wrong = []
    for path in source_files():
        package = package_of(path)
        if package is None:
            continue
        for imported in imported_packages(path) - allowed_imports(package):
            wrong.append(f"{path.relative_to(REPO)} imports marketsense.{imported}")
    assert not wrong, "\n".join(wrong)


def test_the_layering_rule_catches_a_service_importing_another(tmp_path: Path) -> None:
    module = tmp_path / "service.py"
    module.write_text("from marketsense.prediction.service import predict_symbol\n")

    assert imported_packages(module) - allowed_imports("registry") == {"prediction"}
    assert imported_packages(module) - allowed_imports("cli") == set()
    assert "modelkit" not in allowed_imports("prediction")


def shown(path: Path) -> str:
    """A path as a reader finds it: relative to the repository when it is inside."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def long_functions(path: Path) -> list[str]:
    """Functions (and methods) of a module longer than the limit, with their length."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{shown(path)}:{node.lineno} {node.name} is {length} lines"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (length := (node.end_lineno or node.lineno) - node.lineno + 1) > MAX_FUNCTION_LINES
    ]


def test_no_function_outside_migrations_is_longer_than_the_limit() -> None:
    found = [
        line
        for path in source_files()
        if "migrations" not in path.parts
        for line in long_functions(path)
    ]
    assert not found, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(found)


def test_the_length_rule_catches_a_long_method(tmp_path: Path) -> None:
    body = "".join(f"        x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    module = tmp_path / "probe.py"
    module.write_text(f"class C:\n    def long(self) -> None:\n{body}", encoding="utf-8")

    assert [line.split()[1] for line in long_functions(module)] == ["long"]


def test_no_module_is_longer_than_the_limit() -> None:
    found = []
    for path in source_files():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            found.append(f"{path.relative_to(REPO)} has {lines} lines")
    assert not found, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(found)


WIRING = {"__init__", "__main__", "app", "config", "deps", "schemas", "consumers"}
"""Modules that declare or wire rather than decide: their behaviour is tested through the
routes, handlers and settings they put together."""

TEST_TIERS = ("unit", "behaviour", "integration", "e2e", "deploy")


def holds_logic(path: Path) -> bool:
    """Whether a module defines a function or method (not only names, types and constants)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) for n in ast.walk(tree))


def candidate_test_modules(path: Path) -> list[Path]:
    """Where a reader looks for a source module's tests: `test_<module>.py` at the module's own
    place under any tier, or, for an interface with adapters (`bus/`, `store/`),
    `test_<package>.py` beside the package."""
    inside = path.relative_to(REPO).parts
    package = inside[inside.index("marketsense") + 1 : -1]
    return [
        candidate
        for tier in TEST_TIERS
        for candidate in (
            REPO / "tests" / tier / Path(*package) / f"test_{path.stem}.py",
            REPO / "tests" / tier / Path(*package[:-1]) / f"test_{package[-1]}.py",
        )
    ]


def test_every_module_with_logic_has_a_test_module_named_after_it() -> None:
    missing = [
        str(path.relative_to(REPO))
        for path in source_files()
        if package_of(path) is not None
        and "migrations" not in path.parts
        and path.stem not in WIRING
        and holds_logic(path)
        and not any(candidate.is_file() for candidate in candidate_test_modules(path))
    ]
    assert not missing, "modules without a test module named after them:\n" + "\n".join(missing)
