"""The challenger in the registry: pushed once per retrain (a version whose manifest names the
retrain is the one pushed before), then named by the alias `challenger`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from marketsense.common.registry_calls import RegistryCalls
from marketsense.models.bundles import pack_bundle
from marketsense.models.files import MANIFEST_FILE

CHALLENGER = "challenger"
"""The alias a trained challenger gets."""
RETRAIN_KEY = "retrain_id"
"""Entry of a manifest's `training` naming the retrain that made it."""
VERSIONS_SEARCHED = 100
"""Newest versions searched for one this retrain pushed before."""


def pushed_by(versions: list[dict[str, Any]], retrain_id: str) -> int | None:
    """The version among `versions` whose manifest names the retrain, or None."""
    for version in versions:
        training = (version.get("manifest") or {}).get("training") or {}
        if training.get(RETRAIN_KEY) == retrain_id:
            return int(version["version"])
    return None


async def pushed_before(calls: RegistryCalls, *, name: str, retrain_id: str) -> int | None:
    """The version this retrain pushed already (a worker lost after the push), or None."""
    return pushed_by(await calls.versions(name, limit=VERSIONS_SEARCHED), retrain_id)


async def push_challenger(calls: RegistryCalls, *, name: str, directory: Path) -> int:
    """Push the trained model folder as the model's next version; its number."""
    bundle = await asyncio.to_thread(pack_bundle, directory)
    manifest = await asyncio.to_thread((directory / MANIFEST_FILE).read_bytes)
    pushed = await calls.push_version(name, manifest=manifest, bundle=bundle)
    return int(pushed["version"])


async def name_challenger(calls: RegistryCalls, *, name: str, version: int, reason: str) -> None:
    """Point the alias `challenger` at the version, unless it points there already (a worker
    lost after the move: the registry refuses a move to where the alias is)."""
    current = await calls.alias(name, CHALLENGER)
    if current is not None and int(current["version"]) == version:
        return
    await calls.move_alias(name, CHALLENGER, version=version, reason=reason)
