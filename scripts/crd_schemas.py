"""Regenerate deploy/crd-schemas: JSON schemas of the custom resources the chart renders.

The CRDs come from the operators' own Go modules, fetched through the Go module proxy; each
version's `openAPIV3Schema` becomes a strict JSON schema (unknown fields rejected, as the API
server's structural pruning would drop them) in kubeconform's `{group}/{kind}_{version}.json`
layout. Run: `uv run python scripts/crd_schemas.py`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "deploy" / "crd-schemas"

# (Go module, version, CRD file inside the module) of every custom resource the chart renders.
SOURCES = [
    (
        "github.com/prometheus-operator/prometheus-operator",
        "v0.85.0",
        "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
    ),
    (
        "github.com/prometheus-operator/prometheus-operator",
        "v0.85.0",
        "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
    ),
    ("github.com/kedacore/keda/v2", "v2.21.0", "config/crd/bases/keda.sh_scaledobjects.yaml"),
]


def module_dir(module: str, version: str) -> Path:
    """Download a module through the Go proxy (cached under .infra) and return its folder."""
    go = shutil.which("go")
    if go is None:
        raise SystemExit("error: Go is needed to download the CRDs (install golang 1.24 or newer)")
    env = {**os.environ, "GOMODCACHE": str(ROOT / ".infra" / "go" / "mod"), "GOFLAGS": "-mod=mod"}
    out = subprocess.run(
        [go, "mod", "download", "-json", f"{module}@{version}"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    return Path(json.loads(out)["Dir"])


def strict(schema: Any) -> Any:
    """The schema with `additionalProperties: false` on every object that lists its properties."""
    if isinstance(schema, dict):
        node = {key: strict(value) for key, value in schema.items()}
        if (
            "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        return node
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def write_schemas(crd: dict[str, Any]) -> list[Path]:
    """Write one schema per served version of a CRD; the paths written."""
    spec = crd["spec"]
    kind = spec["names"]["kind"].lower()
    written = []
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        schema = strict(version["schema"]["openAPIV3Schema"])
        target = OUT / spec["group"] / f"{kind}_{version['name']}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
        written.append(target)
    return written


def main() -> int:
    """Regenerate every schema in SOURCES."""
    for module, version, path in SOURCES:
        crd = yaml.safe_load((module_dir(module, version) / path).read_text())
        for target in write_schemas(crd):
            print(f"{target.relative_to(ROOT)}  <- {module}@{version}/{path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
