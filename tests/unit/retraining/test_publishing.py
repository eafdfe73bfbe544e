"""A retrain finds the version it pushed before by the retrain id in the manifest's lineage, and
names it `challenger` once, even when a lost worker moved the alias already."""

from __future__ import annotations

from typing import Any, cast

import pytest

from marketsense.common.api_client import ApiError
from marketsense.common.registry_calls import RegistryCalls
from marketsense.retraining.publishing import CHALLENGER, name_challenger, pushed_by


def _version(number: int, training: dict[str, str] | None) -> dict[str, object]:
    manifest: dict[str, object] = {"name": "m"} if training is None else {"training": training}
    return {"version": number, "manifest": manifest}


def test_the_version_naming_the_retrain_is_found_and_others_are_not_taken_for_it() -> None:
    versions = [
        _version(4, {"retrain_id": "other"}),
        _version(3, {"retrain_id": "r-1", "source": "stored runs"}),
        _version(2, None),
    ]
    assert pushed_by(versions, "r-1") == 3
    assert pushed_by(versions, "r-2") is None
    assert pushed_by([], "r-1") is None


class _Registry:
    """The two alias calls `name_challenger` makes, against an alias table in memory."""

    def __init__(self, aliases: dict[str, int]):
        self.aliases, self.moves = aliases, 0

    async def alias(self, name: str, alias: str) -> dict[str, Any] | None:
        return {"version": self.aliases[alias]} if alias in self.aliases else None

    async def move_alias(self, name: str, alias: str, *, version: int, reason: str) -> None:
        if self.aliases.get(alias) == version:
            raise ApiError(409, f"{alias} of {name!r} already points at version {version}")
        self.aliases[alias], self.moves = version, self.moves + 1


@pytest.mark.parametrize(("before", "moves"), [({}, 1), ({CHALLENGER: 1}, 1), ({CHALLENGER: 2}, 0)])
async def test_the_challenger_is_named_once_even_by_a_worker_taking_over_after_the_move(
    before: dict[str, int], moves: int
) -> None:
    registry = _Registry(dict(before))

    await name_challenger(cast(RegistryCalls, registry), name="m", version=2, reason="retrain r-1")

    assert registry.aliases[CHALLENGER] == 2
    assert registry.moves == moves
