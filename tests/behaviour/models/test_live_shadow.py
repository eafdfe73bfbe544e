"""LiveModel following an alias other than production, as prediction's shadow scoring does:
the alias's version or nothing (never the local folder), and no serving report of its own."""

from __future__ import annotations

from pathlib import Path

from marketsense.common.db.models import ModelAlias, ModelServing
from marketsense.common.events import Envelope, ModelPromoted, ObjectRef
from marketsense.models.live import Refresh
from tests.artifacts import small_predictor
from tests.behaviour.models.test_live import following
from tests.model_registry_rows import promote, publish, register_version


async def test_a_challenger_follower_holds_the_alias_version_or_nothing_and_reports_nothing(
    tmp_path: Path,
) -> None:
    local = small_predictor(tmp_path / "local", version="7")
    async with following(tmp_path, fallback=local, alias="challenger") as live:
        runtime = live.runtime
        await live.start()
        # No challenger: nothing to shadow-score, and never the local folder.
        assert live.slot.current is None

        champion = await publish(runtime, name=live.name, folder=small_predictor(tmp_path / "v1"))
        challenger = await register_version(
            runtime,
            name=live.name,
            kind="predictor",
            folder=small_predictor(tmp_path / "v2", seed=2),
        )
        promoted = ModelPromoted(
            model_name=live.name,
            alias="challenger",
            version=str(challenger),
            previous_version=None,
            manifest=ObjectRef(uri="models/x/2/manifest.json", sha256="0" * 64, size=1),
        )
        handler = live.subscription("prediction").handler
        assert handler is not None
        await handler(Envelope.wrap(promoted), promoted)  # read before the alias exists
        assert live.slot.current is None
        await promote(runtime, name=live.name, version=challenger, alias="challenger")
        await handler(Envelope.wrap(promoted), promoted)

        assert (live.version, champion) == (str(challenger), 1)
        assert live.reported() == {
            "service": "prediction",
            "model": live.name,
            "version": str(challenger),
            "variant": "fp32",
            "source": "registry",
            "alias": "challenger",
        }
        async with runtime.database.session() as session:
            # The replica's serving report is production's to write, not the shadow's.
            assert await session.get(ModelServing, (live.reporter.replica, live.name)) is None
        async with runtime.transaction() as session:
            row = await session.get(ModelAlias, (live.name, "challenger"))
            assert row is not None
            await session.delete(row)

        assert await live.refresh() is Refresh.NOT_REGISTERED
        assert live.slot.current is None
        assert live.reported() is None
