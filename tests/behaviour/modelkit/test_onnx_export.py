"""The export gate: ONNX logits must match torch on padded batches, or nothing is written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from marketsense.modelkit.encoders import ClassifierLogits, load_sequence_classifier
from marketsense.modelkit.onnx_export import (
    OUTPUT_NAME,
    PARITY_TEXTS,
    PARITY_TOLERANCE,
    REFERENCE_TEXTS,
    ParityError,
    check_parity,
    export_sentiment_artifact,
    library_versions,
    parity_texts,
)
from marketsense.modelkit.sentiment_data import LABELS
from marketsense.models.files import (
    MANIFEST_FILE,
    MODEL_FILE,
    QUANTIZED_MODEL_FILE,
    REFERENCE_FILE,
    TOKENIZER_FILE,
)
from marketsense.models.integrity import file_sha256
from marketsense.models.sentiment import SentimentManifest, SentimentModel
from tests.sentiment_support import read_manifest

INPUT_NAMES = ["input_ids", "attention_mask", "token_type_ids"]


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


class _NotANumber(torch.nn.Module):
    """Logits that are NaN wherever the wrapped module's are not."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        logits: torch.Tensor = self.inner(input_ids, attention_mask, token_type_ids)
        return logits * float("nan")


def test_parity_gate_fails_on_torch_logits_that_are_not_numbers(
    tiny_classifier_dir: Path, tiny_artifact: Path
) -> None:
    module = _NotANumber(ClassifierLogits(load_sequence_classifier(tiny_classifier_dir)))

    with pytest.raises(ParityError, match="nan"):
        check_parity(module, SentimentModel(tiny_artifact), batches=[["Up", "Shares fell."]])


def test_parity_texts_keep_the_batches_and_fill_in_the_long_and_medium_texts(
    fp32_model: SentimentModel,
) -> None:
    batches = parity_texts(fp32_model)

    assert [len(batch) for batch in batches] == [len(batch) for batch in PARITY_TEXTS]
    for template, batch in zip(PARITY_TEXTS, batches, strict=True):
        for placeholder, text in zip(template, batch, strict=True):
            if placeholder in ("LONG", "MEDIUM"):
                assert len(text.split()) > 20, placeholder
            else:
                assert text == placeholder


def test_export_into_a_file_is_refused_before_any_work(tmp_path: Path) -> None:
    target = tmp_path / "artifact"
    target.write_text("not a folder")

    with pytest.raises(NotADirectoryError, match="is not a folder"):
        export_sentiment_artifact(
            torch.nn.Identity(),
            target,
            tokenizer_file=tmp_path / "no-tokenizer.json",
            name="x",
            version="0",
            labels=LABELS,
            max_length=16,
            input_names=INPUT_NAMES,
        )
    assert target.read_text() == "not a folder"


def test_export_reports_each_step_and_publishes_a_complete_artifact(
    tiny_classifier_dir: Path, tmp_path: Path
) -> None:
    steps: list[str] = []
    out = tmp_path / "artifact"

    returned = export_sentiment_artifact(
        ClassifierLogits(load_sequence_classifier(tiny_classifier_dir)),
        out,
        tokenizer_file=tiny_classifier_dir / TOKENIZER_FILE,
        name="tiny",
        version="3",
        labels=LABELS,
        max_length=64,
        input_names=INPUT_NAMES,
        metrics={"train_rows": 12.0},
        source={"base_model": "tiny-bert"},
        on_progress=steps.append,
    )

    assert [step.split()[0] for step in steps] == [
        "exporting",
        "checking",
        "writing",
        "quantising",
        "evaluating",
    ]
    assert {p.name for p in out.iterdir()} == {
        MODEL_FILE,
        QUANTIZED_MODEL_FILE,
        TOKENIZER_FILE,
        REFERENCE_FILE,
        MANIFEST_FILE,
    }
    assert list(tmp_path.iterdir()) == [out]  # the staging folder is gone
    written = read_manifest(out)
    assert written == returned
    assert (written.name, written.version, written.output_name) == ("tiny", "3", OUTPUT_NAME)
    assert written.metrics["train_rows"] == 12.0  # given metrics are kept beside the measured
    assert written.metrics["parity_max_abs_diff"] <= PARITY_TOLERANCE
    assert written.source["base_model"] == "tiny-bert"
    for library, version in library_versions().items():
        assert written.source[f"{library}_version"] == version
    assert SentimentModel(out, quantized=True).scores(["Up", "Down"]).shape == (2,)


def test_manifest_of_the_default_artifact_records_the_exporter(
    manifest: SentimentManifest,
) -> None:
    assert manifest.source["exporter"].startswith("torch.onnx.export dynamo=True")
    assert "QInt8" in manifest.source["quantization"]


def test_the_manifest_lists_every_other_file_with_its_final_sha256_and_size(
    tiny_artifact: Path,
) -> None:
    listed = json.loads((tiny_artifact / MANIFEST_FILE).read_text())["files"]

    assert [entry["name"] for entry in listed] == sorted(
        p.name for p in tiny_artifact.iterdir() if p.name != MANIFEST_FILE
    )
    for entry in listed:
        path = tiny_artifact / entry["name"]
        assert (entry["sha256"], entry["size"]) == (file_sha256(path), path.stat().st_size)


def test_the_reference_holds_the_torch_models_probabilities_in_label_order(
    tiny_classifier_dir: Path, tiny_artifact: Path
) -> None:
    reference = json.loads((tiny_artifact / REFERENCE_FILE).read_text())
    model = SentimentModel(tiny_artifact)
    classifier = ClassifierLogits(load_sequence_classifier(tiny_classifier_dir)).eval()

    assert reference["texts"] == list(REFERENCE_TEXTS)
    assert len(REFERENCE_TEXTS) == 32
    # Varied on purpose: single words up to texts of dozens of words.
    assert min(len(t.split()) for t in REFERENCE_TEXTS) == 1
    assert max(len(t.split()) for t in REFERENCE_TEXTS) > 30
    # Each text alone, unpadded, through the torch classifier: what its framework says.
    for text, row in zip(REFERENCE_TEXTS[:6], reference["probabilities"], strict=False):
        feed = model.encode([text])
        with torch.inference_mode():
            logits = classifier(*(torch.from_numpy(feed[n]) for n in model.manifest.input_names))
        np.testing.assert_allclose(row, torch.softmax(logits[0], dim=0).numpy(), atol=1e-5)
    np.testing.assert_allclose(
        model.probabilities(list(REFERENCE_TEXTS)), reference["probabilities"], atol=1e-4
    )
