"""The challenges table: one challenge per challenger version however often it is opened, and
a decision written only while the challenge is still undecided."""

from __future__ import annotations

import pytest

from marketsense.common.runtime import Runtime
from marketsense.monitoring.challenge_store import (
    ChallengeState,
    challengers,
    list_challenges,
    open_challenge,
    save_challenge,
)

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def test_a_challenger_version_is_challenged_once_and_decided_once(runtime: Runtime) -> None:
    first = await open_challenge(runtime, model="m", champion="1", challenger="2", margin=0.5)
    again = await open_challenge(runtime, model="m", champion="1", challenger="2", margin=0.9)
    other = await open_challenge(runtime, model="m", champion="1", challenger="3", margin=0.5)

    decided = await save_challenge(runtime, first, state=ChallengeState.REJECTED.value)
    late = await save_challenge(runtime, first, state=ChallengeState.PROMOTED.value)

    assert again.id == first.id
    assert again.margin == 0.5
    assert decided is not None
    assert decided.state == "REJECTED"
    assert late is None
    assert [c.challenger_version for c in await list_challenges(runtime)] == ["3", "2"]
    assert [c.id for c in await list_challenges(runtime, model="m", limit=1)] == [other.id]


async def test_versions_challenged_and_never_promoted_are_the_challengers(
    runtime: Runtime,
) -> None:
    for version, state in (("2", "REJECTED"), ("3", "PROMOTED"), ("4", "SHADOWING")):
        opened = await open_challenge(
            runtime, model="m", champion="1", challenger=version, margin=0.5
        )
        await save_challenge(runtime, opened, state=state)
    await open_challenge(runtime, model="other", champion="1", challenger="5", margin=0.5)

    # The decay policy leaves these to their challenges; a promoted one is production's now.
    assert await challengers(runtime, "m") == {"2", "4"}
