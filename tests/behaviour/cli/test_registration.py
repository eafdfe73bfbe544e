"""The embedded default's models put in its registry as production, the first time round only,
with a key that lives only as long as the registration."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import select

from marketsense.cli.defaults import holdout_set_path
from marketsense.cli.registration import ensure_registered, temporary_key
from marketsense.common.auth import Role, hash_key, list_keys
from marketsense.common.db.engine import Database
from marketsense.common.db.models import (
    ApiKey,
    EvaluationSet,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
)
from marketsense.common.runtime import Runtime
from marketsense.registry.config import RegistrySettings
from tests.artifacts import small_predictor
from tests.gate_support import outcome_set, weighted_predictor
from tests.model_registry_rows import unloadable_copy
from tests.registry_support import registry_settings


def ranked_predictor(directory: Path, name: str, *, seed: int = 3, holdout: bool = True) -> Path:
    """An embedded predictor that ranks its holdout's outcomes well, as the demo's does."""
    folder = weighted_predictor(directory, skill=2.0, noise_seed=seed, name=name)
    if holdout:
        holdout_set_path(folder).write_bytes(outcome_set(rows=40))
    return folder


@pytest.fixture
def settings(tmp_path: Path, database: Database, database_url: str) -> RegistrySettings:
    """The registry's settings on an empty database of each kind and a folder store."""
    return registry_settings(
        home=tmp_path / "home", database_url=database_url, store_url=(tmp_path / "objects").as_uri()
    )


async def _production(database: Database) -> dict[str, list[int]]:
    """Each model's versions, and the one production names last."""
    async with database.session() as session:
        versions = list(await session.scalars(select(ModelVersion).order_by(ModelVersion.version)))
        aliases = {a.model_name: a.version for a in await session.scalars(select(ModelAlias))}
    found: dict[str, list[int]] = {}
    for row in versions:
        found.setdefault(row.model_name, []).append(row.version)
    return {name: [*numbers, aliases.get(name, 0)] for name, numbers in found.items()}


async def test_each_artifact_becomes_production_once_and_a_second_call_changes_nothing(
    settings: RegistrySettings, database: Database, tmp_path: Path
) -> None:
    artifacts = [
        ("predictor", ranked_predictor(tmp_path / "a", "embedded-a")),
        ("predictor", ranked_predictor(tmp_path / "b", "embedded-b", seed=12)),
    ]
    first, second = Console(record=True, width=200), Console(record=True, width=200)

    await ensure_registered(settings, artifacts, first)
    await ensure_registered(settings, artifacts, second)

    assert await _production(database) == {"embedded-a": [1, 1], "embedded-b": [1, 1]}
    assert first.export_text().splitlines() == [
        "evaluation set embedded-a-holdout (40 rows) added for predictors",
        "registered embedded-a v1 as production",
        # The same rows again: the registry keeps one set and says so.
        "evaluation set embedded-a-holdout (40 rows) already held for predictors",
        "registered embedded-b v1 as production",
    ]
    assert second.export_text() == ""
    async with database.session() as session:
        model = await session.get(RegisteredModel, "embedded-a")
        keys = await list_keys(session)
    assert model is not None
    assert (model.kind, model.description) == ("predictor", "embedded default predictor model")
    # The keys the registrations used are revoked: none is left for anyone to find.
    assert keys
    assert all(key.name.startswith("embedded-bootstrap-") for key in keys)
    assert all(key.revoked_at is not None for key in keys)


async def test_a_model_registered_without_production_gets_its_artifact_promoted(
    settings: RegistrySettings, database: Database, tmp_path: Path
) -> None:
    async with database.session() as session:
        session.add(
            RegisteredModel(
                name="embedded-a", kind="predictor", description="kept", created_by="operator"
            )
        )
        await session.commit()
    folder = ranked_predictor(tmp_path / "a", "embedded-a")

    await ensure_registered(settings, [("predictor", folder)], Console(quiet=True))

    assert await _production(database) == {"embedded-a": [1, 1]}
    async with database.session() as session:
        model = await session.get(RegisteredModel, "embedded-a")
    assert model is not None
    assert model.description == "kept"


async def test_an_artifact_the_registry_refuses_raises_naming_the_request_and_the_reason(
    settings: RegistrySettings, database: Database, tmp_path: Path
) -> None:
    broken = unloadable_copy(small_predictor(tmp_path / "a", name="embedded-a"), tmp_path / "b")

    with pytest.raises(RuntimeError) as refused:
        await ensure_registered(settings, [("predictor", broken)], Console(quiet=True))

    assert str(refused.value).startswith(
        "registry refused POST /v1/models/embedded-a/versions: 422 "
    )
    assert "model.onnx" in str(refused.value)
    assert await _production(database) == {}


async def test_a_temporary_key_works_inside_its_block_and_is_revoked_after_it(
    settings: RegistrySettings, database: Database
) -> None:
    runtime = Runtime(settings, service="registry")
    try:
        async with (
            temporary_key(runtime, Role.PUBLISHER, "demo") as key,
            database.session() as session,
        ):
            inside = await session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
            assert inside is not None
            assert (inside.role, inside.revoked_at) == ("publisher", None)
            assert inside.name.startswith("demo-")
        async with database.session() as session:
            after = await session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
    finally:
        await runtime.database.dispose()

    assert after is not None
    assert after.revoked_at is not None


async def test_a_predictors_holdout_rows_become_the_predictor_set_before_its_push(
    settings: RegistrySettings, database: Database, tmp_path: Path
) -> None:
    with_holdout = ranked_predictor(tmp_path / "a", "embedded-a")
    without = ranked_predictor(tmp_path / "b", "embedded-b", seed=12, holdout=False)
    console = Console(record=True, width=200)

    await ensure_registered(
        settings, [("predictor", with_holdout), ("predictor", without)], console
    )

    async with database.session() as session:
        sets = list(await session.scalars(select(EvaluationSet)))
        pushed = await session.scalar(
            select(ModelVersion).where(ModelVersion.model_name == "embedded-a")
        )
    assert [(row.kind, row.name, row.rows) for row in sets] == [
        ("predictor", "embedded-a-holdout", 40)
    ]
    assert pushed is not None
    assert sets[0].created_at <= pushed.created_at
    assert console.export_text().splitlines()[0] == (
        "evaluation set embedded-a-holdout (40 rows) added for predictors"
    )
    assert await _production(database) == {"embedded-a": [1, 1], "embedded-b": [1, 1]}
