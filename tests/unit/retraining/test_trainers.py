"""The worker hands a trainer the seed only when it takes one, and the lineage always."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from marketsense.retraining.trainers import train

TABLE = pd.DataFrame({"symbol": ["A"], "date": ["2026-06-01"], "label": [1]})
LINEAGE = {"retrain_id": "r-1"}


def test_a_seeded_trainer_gets_the_seed_and_an_unseeded_one_does_not(tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []

    def seeded(
        table: pd.DataFrame,
        directory: Path,
        *,
        name: str,
        source: str,
        seed: int = 0,
        training: Mapping[str, str] | None = None,
    ) -> Any:
        calls.append({"name": name, "seed": seed, "training": training})

    def unseeded(
        table: pd.DataFrame,
        directory: Path,
        *,
        name: str,
        source: str,
        training: Mapping[str, str] | None = None,
    ) -> Any:
        calls.append({"name": name, "training": training})

    train(seeded, TABLE, tmp_path, name="m", seed=7, training=LINEAGE)
    train(unseeded, TABLE, tmp_path, name="m", seed=7, training=LINEAGE)

    assert calls == [
        {"name": "m", "seed": 7, "training": LINEAGE},
        {"name": "m", "training": LINEAGE},
    ]
