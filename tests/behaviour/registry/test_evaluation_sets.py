"""The registry's evaluation sets: stored by hash, the newest of a kind in use, the shipped
held-out texts installed first, every read verified against the recorded sha256."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from marketsense.common.db.models import RegistryAudit
from marketsense.models.evaluation import HELDOUT_SET_PATH, InvalidEvaluationSet
from marketsense.registry.evaluation_sets import (
    DEFAULT_SENTIMENT_SET,
    active_ids,
    active_set,
    add_set,
    read_set,
    set_bytes,
    set_key,
    set_page,
    store_set,
)
from tests.evaluation_set_support import predictor_parquet, sentiment_csv
from tests.registry_support import Registry


async def test_the_same_bytes_again_return_the_stored_set_and_are_not_new(
    registry: Registry,
) -> None:
    runtime = registry.runtime
    first, first_new = await store_set(
        runtime, kind="sentiment", name="a", data=sentiment_csv(), source="test", actor="ops"
    )
    again, again_new = await store_set(
        runtime, kind="sentiment", name="b", data=sentiment_csv(), source="test", actor="ops"
    )
    via_add = await add_set(
        runtime, kind="sentiment", name="c", data=sentiment_csv(), source="test", actor="ops"
    )

    assert (first_new, again_new) == (True, False)
    assert again.id == first.id == via_add.id
    assert again.name == "a"
    assert first.rows == 24
    async with runtime.database.session() as session:
        audited = list(await session.scalars(select(RegistryAudit.action)))
    assert audited.count("evaluation_set_added") == 1


async def test_an_unusable_set_is_refused_and_not_stored(registry: Registry) -> None:
    with pytest.raises(InvalidEvaluationSet, match="text,label"):
        await add_set(
            registry.runtime,
            kind="sentiment",
            name="bad",
            data=b"headline,score\nx,1\n",
            source="test",
            actor="ops",
        )

    assert await active_set(registry.runtime, "predictor") is None


async def test_the_first_sentiment_set_is_the_shipped_held_out_texts(registry: Registry) -> None:
    installed = await active_set(registry.runtime, "sentiment")

    assert installed is not None
    assert installed.name == DEFAULT_SENTIMENT_SET
    assert installed.rows == 300
    assert await set_bytes(registry.runtime.store, installed) == HELDOUT_SET_PATH.read_bytes()


async def test_the_newest_set_of_a_kind_is_the_active_one(registry: Registry) -> None:
    runtime = registry.runtime
    older = await add_set(
        runtime, kind="predictor", name="old", data=predictor_parquet(seed=1), source="t", actor="o"
    )
    newer = await add_set(
        runtime, kind="predictor", name="new", data=predictor_parquet(seed=2), source="t", actor="o"
    )
    texts = await add_set(
        runtime, kind="sentiment", name="texts", data=sentiment_csv(), source="t", actor="o"
    )

    active = await active_set(runtime, "predictor")
    async with runtime.database.session() as session:
        ids = await active_ids(session)

    assert active is not None
    assert active.id == newer.id
    assert ids == {newer.id, texts.id}
    assert older.id not in ids


async def test_pages_run_newest_first_filtered_by_kind(registry: Registry) -> None:
    runtime = registry.runtime
    added = [
        await add_set(
            runtime,
            kind="sentiment",
            name=f"s{i}",
            data=sentiment_csv(prefix=f"p{i}"),
            source="t",
            actor="o",
        )
        for i in range(3)
    ]
    await add_set(
        runtime, kind="predictor", name="p", data=predictor_parquet(), source="t", actor="o"
    )

    async with runtime.database.session() as session:
        first, cursor = await set_page(session, kind="sentiment", limit=2, cursor=None)
        second, end = await set_page(session, kind="sentiment", limit=2, cursor=cursor)

    assert [row.name for row in first] == ["s2", "s1"]
    assert [row.id for row in second] == [added[0].id]
    assert end is None


async def test_a_set_whose_stored_bytes_changed_is_not_read(registry: Registry) -> None:
    runtime = registry.runtime
    row = await add_set(
        runtime, kind="sentiment", name="s", data=sentiment_csv(), source="t", actor="o"
    )
    await runtime.store.put(set_key("sentiment", row.sha256), sentiment_csv(prefix="swapped"))

    with pytest.raises(ValueError, match="does not match its recorded sha256"):
        await read_set(runtime.store, row)
