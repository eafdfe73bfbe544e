"""Every served graph must reproduce the exporter's scores, and run at its declared max_length."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from marketsense.models.files import MANIFEST_FILE, QUANTIZED_MODEL_FILE, REFERENCE_FILE
from marketsense.models.parity import (
    FP32_TOLERANCE,
    INT8_TOLERANCE,
    ParityError,
    check_longest_input,
    check_parity,
    read_reference,
)
from marketsense.models.probes import PROBE_TEXTS
from marketsense.models.sentiment import SentimentModel
from tests.sentiment_support import linked_copy, read_manifest, shift_logits, write_reference

TEXTS = [text for texts in PROBE_TEXTS.values() for text in texts]


def _variants(directory: Path) -> dict[str, SentimentModel]:
    return {
        "fp32": SentimentModel(directory),
        "int8": SentimentModel(directory, quantized=True),
    }


def _with_max_length(directory: Path, max_length: int) -> SentimentModel:
    manifest = read_manifest(directory).model_copy(update={"max_length": max_length})
    (directory / MANIFEST_FILE).write_text(manifest.model_dump_json())
    return SentimentModel(directory)


def test_both_graphs_of_the_default_model_match_its_reference(
    sentiment_model_dir: Path, tmp_path: Path
) -> None:
    artifact = write_reference(linked_copy(sentiment_model_dir, tmp_path / "a"), TEXTS)
    reference = read_reference(artifact / REFERENCE_FILE, labels=3)

    record = check_parity(_variants(artifact), reference, [])

    assert record["fp32"]["max_abs_diff"] <= FP32_TOLERANCE
    assert 0 < record["int8"]["max_abs_diff"] <= INT8_TOLERANCE
    assert record["int8"] | {"max_abs_diff": 0} == {
        "against": "reference.json",
        "texts": len(TEXTS),
        "max_abs_diff": 0,
        "tolerance": INT8_TOLERANCE,
    }


def test_an_fp32_graph_off_its_reference_by_more_than_the_tolerance_is_refused(
    sentiment_model_dir: Path, tmp_path: Path
) -> None:
    artifact = write_reference(linked_copy(sentiment_model_dir, tmp_path / "a"), TEXTS)
    reference = read_reference(artifact / REFERENCE_FILE, labels=3)
    reference.probabilities[3] += [0.001, 0.0, -0.001]

    with pytest.raises(ParityError) as raised:
        check_parity(_variants(artifact), reference, [])

    message = str(raised.value)
    assert message.startswith("model.onnx (fp32) gives probabilities up to 0.00")
    assert f"away from reference.json on its {len(TEXTS)} texts; at most 0.0001 is allowed" in (
        message
    )


def test_without_a_reference_an_int8_graph_of_other_weights_is_refused(
    sentiment_model_dir: Path, tmp_path: Path
) -> None:
    artifact = linked_copy(sentiment_model_dir, tmp_path / "a")
    shift_logits(artifact / QUANTIZED_MODEL_FILE, [-3.0, 0.0, 3.0])

    with pytest.raises(ParityError, match=r"model\.int8\.onnx \(int8\) .* away from model\.onnx"):
        check_parity(_variants(artifact), None, TEXTS)


def test_without_a_reference_int8_is_compared_with_fp32_on_the_probe_texts(
    sentiment_model_dir: Path, tmp_path: Path
) -> None:
    artifact = linked_copy(sentiment_model_dir, tmp_path / "a")

    record = check_parity(_variants(artifact), None, TEXTS)

    assert list(record) == ["int8"]
    assert record["int8"]["against"] == "model.onnx"
    assert record["int8"]["max_abs_diff"] <= INT8_TOLERANCE


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[]", 'must be {"texts": [...], "probabilities": [[...]]}'),
        ('{"texts": [], "probabilities": []}', "holds 0 texts; 1 to 256 are allowed"),
        ('{"texts": [""], "probabilities": [[1, 0]]}', "`texts` must be a list of non-empty"),
        ('{"texts": ["a"], "probabilities": [[1, 0]]}', "has shape [1, 2]; expected [1, 3]"),
        ('{"texts": ["a"], "probabilities": [["x", 0, 1]]}', "is not a table of numbers"),
        ("{", "is not JSON"),
    ],
)
def test_a_malformed_reference_is_refused_saying_what_is_wrong(
    tmp_path: Path, content: str, problem: str
) -> None:
    (tmp_path / REFERENCE_FILE).write_text(content)

    with pytest.raises(ValueError, match=re.escape(problem)):
        read_reference(tmp_path / REFERENCE_FILE, labels=3)


def test_the_default_model_runs_a_text_of_its_declared_max_length(
    sentiment_model_dir: Path,
) -> None:
    model = SentimentModel(sentiment_model_dir)

    assert check_longest_input(model) == model.manifest.max_length


def test_a_max_length_beyond_the_graphs_positions_is_refused_naming_the_field(
    sentiment_model_dir: Path, tmp_path: Path
) -> None:
    model = _with_max_length(linked_copy(sentiment_model_dir, tmp_path / "a"), 1024)

    with pytest.raises(ValueError, match="max_length=1024") as raised:
        check_longest_input(model)

    assert str(raised.value).startswith(
        "model.onnx fails on a text of the declared max_length=1024 tokens: "
    )
    assert "set `max_length` in the manifest to at most what the graph takes" in str(raised.value)
    assert json.loads((sentiment_model_dir / MANIFEST_FILE).read_text())["max_length"] == 128
