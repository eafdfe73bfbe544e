"""Exporting a local Hugging Face classifier (FinBERT and the like) as a sentiment artifact."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import DistilBertConfig, DistilBertForSequenceClassification

from marketsense.modelkit.encoders import ClassifierLogits, load_sequence_classifier, minilm_path
from marketsense.modelkit.hf_export import export_hf_classifier, sentiment_labels
from marketsense.modelkit.onnx_export import PARITY_TOLERANCE
from marketsense.models.files import MANIFEST_FILE, TOKENIZER_FILE
from marketsense.models.sentiment import SentimentManifest, SentimentModel
from tests.sentiment_support import NEGATIVE, POSITIVE


def test_hf_export_round_trip_matches_the_torch_classifier(
    tiny_classifier_dir: Path, tiny_artifact: Path
) -> None:
    manifest = SentimentManifest.model_validate_json((tiny_artifact / MANIFEST_FILE).read_text())
    assert manifest.name == "tiny-bert"
    assert manifest.labels == ["negative", "neutral", "positive"]
    assert manifest.input_names == ["input_ids", "attention_mask", "token_type_ids"]
    assert manifest.metrics["parity_max_abs_diff"] <= PARITY_TOLERANCE
    assert {"heldout_accuracy", "heldout_macro_f1_int8"} <= set(manifest.metrics)
    model = SentimentModel(tiny_artifact)
    texts = [POSITIVE, NEGATIVE, "Up", "Shares were flat."]
    classifier = ClassifierLogits(load_sequence_classifier(tiny_classifier_dir))
    feed = model.encode(texts)
    with torch.inference_mode():
        logits = classifier(*(torch.from_numpy(feed[n]) for n in manifest.input_names))
    np.testing.assert_allclose(
        model.probabilities(texts), torch.softmax(logits, dim=1).numpy(), atol=1e-5
    )
    assert SentimentModel(tiny_artifact, quantized=True).scores(texts).shape == (4,)


def test_hf_labels_are_matched_case_insensitively_in_logit_order() -> None:
    assert sentiment_labels({0: "POSITIVE", 1: "Negative", 2: "neutral"}) == [
        "positive",
        "negative",
        "neutral",
    ]


@pytest.mark.parametrize(
    "id2label", [{0: "LABEL_0", 1: "LABEL_1"}, {0: "negative", 1: "neutral", 2: "bullish"}]
)
def test_hf_labels_without_negative_or_positive_are_refused(id2label: dict[int, str]) -> None:
    with pytest.raises(ValueError, match="sentiment model needs both"):
        sentiment_labels(id2label)


def test_hf_labels_repeating_a_name_are_refused() -> None:
    with pytest.raises(ValueError, match="repeats a label name"):
        sentiment_labels({0: "negative", 1: "Negative", 2: "positive"})


def test_a_missing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        export_hf_classifier(tmp_path / "nope", tmp_path / "out", name="x", version="1")


def test_a_folder_without_its_tokenizer_is_refused_with_a_hint(
    tiny_classifier_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "without-tokenizer"
    shutil.copytree(tiny_classifier_dir, source, ignore=shutil.ignore_patterns(TOKENIZER_FILE))

    with pytest.raises(FileNotFoundError, match=r"has no tokenizer\.json \(save the fast"):
        export_hf_classifier(source, tmp_path / "out", name="x", version="1")
    assert not (tmp_path / "out").exists()


def test_a_bare_encoder_without_a_classification_head_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not a sequence-classification model"):
        export_hf_classifier(minilm_path(), tmp_path / "out", name="x", version="1")
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def tiny_distilbert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random DistilBERT classifier (no segment ids, 64 positions) whose tokenizer does not
    truncate, so the positions set the longest text."""
    directory = tmp_path_factory.mktemp("tiny-distilbert")
    torch.manual_seed(1)
    config = DistilBertConfig(
        vocab_size=30522,
        dim=32,
        n_layers=1,
        n_heads=2,
        hidden_dim=64,
        max_position_embeddings=64,
        id2label={0: "positive", 1: "negative", 2: "neutral"},
        label2id={"positive": 0, "negative": 1, "neutral": 2},
    )
    DistilBertForSequenceClassification(config).save_pretrained(directory)
    tokenizer = json.loads((minilm_path() / TOKENIZER_FILE).read_text())
    (directory / TOKENIZER_FILE).write_text(json.dumps(tokenizer | {"truncation": None}))
    return directory


def test_a_classifier_without_segment_ids_exports_with_two_inputs(
    tiny_distilbert_dir: Path, tmp_path: Path
) -> None:
    manifest = export_hf_classifier(
        tiny_distilbert_dir, tmp_path / "out", name="tiny-distilbert", version="2"
    )

    assert manifest.input_names == ["input_ids", "attention_mask"]
    assert manifest.labels == ["positive", "negative", "neutral"]  # the logits' own order
    assert manifest.max_length == 64  # from the positions: the tokenizer sets no limit
    assert manifest.source["architecture"] == "DistilBertForSequenceClassification"
    assert json.loads(manifest.source["id2label"]) == {
        "0": "positive",
        "1": "negative",
        "2": "neutral",
    }
    model = SentimentModel(tmp_path / "out")
    assert model.scores(["word " * 200, "Up"]).shape == (2,)  # a long text is truncated
