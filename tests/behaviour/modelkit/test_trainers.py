"""Every trainer by name: the same table gives each a bundle it records, or the same refusal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from marketsense.common.features import FEATURE_COLUMNS
from marketsense.modelkit.trainers import TRAINERS
from marketsense.modelkit.training_errors import InsufficientTrainingData
from marketsense.models.predictor import OnnxPredictor
from tests.predictor_support import planted_table


@pytest.mark.parametrize("name", sorted(TRAINERS))
def test_every_trainer_refuses_a_one_class_table_and_writes_nothing(
    name: str, tmp_path: Path
) -> None:
    table = planted_table(days=30, symbols=20).assign(label=0)

    with pytest.raises(InsufficientTrainingData, match="every label in the training table is 0"):
        TRAINERS[name](table, tmp_path / "bundle", name="m", source="planted")

    assert not (tmp_path / "bundle").exists()


@pytest.mark.parametrize("name", sorted(TRAINERS))
def test_every_trainer_writes_a_bundle_with_the_lineage_it_was_given(
    name: str, tmp_path: Path
) -> None:
    table = planted_table(days=30, symbols=20)

    manifest = TRAINERS[name](
        table, tmp_path, name="m", version="7", source="planted", training={"window": "w1"}
    )

    assert (manifest.name, manifest.version) == ("m", "7")
    assert manifest.training["window"] == "w1"
    assert manifest.training["source"] == "planted"
    assert manifest.training["symbols"] == "20"
    assert manifest.training["trainer"] == name
    probs = OnnxPredictor(tmp_path).predict_up(table[list(FEATURE_COLUMNS)].to_numpy(np.float32))
    assert np.isfinite(probs).all()
