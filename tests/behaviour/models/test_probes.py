"""The label probe: where clear texts of each label score highest, against the declared order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from marketsense.models.checks import check_sentiment
from marketsense.models.files import MANIFEST_FILE
from marketsense.models.probes import (
    PROBE_TEXTS,
    LabelOrderError,
    check_label_order,
    probe_texts,
    read_probe,
)
from tests.sentiment_support import linked_copy, read_manifest

GRAPH_ORDER = ["negative", "neutral", "positive"]
"""The output columns of the graph the probabilities below stand for."""


def _graph_probabilities(confidence: float = 0.9) -> dict[str, np.ndarray]:
    """Probe-text probabilities of a graph whose columns are GRAPH_ORDER: each label's texts put
    `confidence` in their own column."""
    rest = (1 - confidence) / 2
    result = {}
    for label, texts in PROBE_TEXTS.items():
        row = np.full(3, rest)
        row[GRAPH_ORDER.index(label)] = confidence
        result[label] = np.tile(row, (len(texts), 1))
    return result


def test_the_order_the_graph_was_trained_with_fits() -> None:
    result = read_probe(GRAPH_ORDER, _graph_probabilities())

    check_label_order(result)
    assert result.columns == {"negative": 0, "neutral": 1, "positive": 2}
    assert result.as_record()["fits_declared_order"] is True
    assert result.as_record()["mean_probability"]["positive"] == pytest.approx(0.9)


def test_positive_and_negative_swapped_are_refused_with_the_order_that_fits() -> None:
    declared = ["positive", "neutral", "negative"]

    with pytest.raises(LabelOrderError) as raised:
        check_label_order(read_probe(declared, _graph_probabilities()))

    message = str(raised.value)
    assert message.startswith(f"labels {declared} contradict the graph's scores: ")
    assert "clearly negative texts score highest in column 0 ('positive'), not column 2" in message
    assert f"the order that fits the scores is {GRAPH_ORDER}" in message
    assert "fix `labels` in the manifest" in message


def test_neutral_moved_to_another_column_is_refused() -> None:
    declared = ["negative", "positive", "neutral"]

    with pytest.raises(LabelOrderError, match="clearly positive texts score highest in column 2"):
        check_label_order(read_probe(declared, _graph_probabilities()))


def test_a_two_label_model_is_probed_on_its_two_labels_only() -> None:
    probabilities = {
        "negative": np.tile([0.8, 0.2], (6, 1)),
        "positive": np.tile([0.3, 0.7], (6, 1)),
    }

    result = read_probe(["negative", "positive"], probabilities)

    check_label_order(result)
    assert set(probe_texts(["negative", "positive"])) == {"negative", "positive"}
    assert result.as_record()["probed"] == ["negative", "positive"]


def test_a_model_unsure_of_neutral_texts_is_not_refused_for_them() -> None:
    # Neutral texts leaning positive, while the polar labels sit where declared: a weak neutral
    # class is a quality matter for the evaluation set, not a wrong label order.
    probabilities = _graph_probabilities()
    probabilities["neutral"] = np.tile([0.2, 0.35, 0.45], (6, 1))

    result = read_probe(GRAPH_ORDER, probabilities)

    check_label_order(result)
    assert result.columns["neutral"] == 2


def test_a_graph_scoring_every_text_alike_fits_no_order() -> None:
    same = {label: np.tile([0.2, 0.2, 0.6], (len(t), 1)) for label, t in PROBE_TEXTS.items()}

    with pytest.raises(LabelOrderError, match="no order of these labels fits the scores"):
        check_label_order(read_probe(GRAPH_ORDER, same))


def test_the_registry_records_the_probe_and_skips_it_for_another_language(
    sentiment_model_dir: Path, tmp_path: Path
) -> None:
    english = linked_copy(sentiment_model_dir, tmp_path / "en")
    german = linked_copy(sentiment_model_dir, tmp_path / "de")
    flipped = read_manifest(german).model_copy(
        update={"language": "de", "labels": ["positive", "neutral", "negative"]}
    )
    (german / MANIFEST_FILE).write_text(flipped.model_dump_json())

    recorded = check_sentiment(english, read_manifest(english))
    skipped = check_sentiment(german, flipped)

    assert recorded["labels"]["fits_declared_order"] is True
    assert recorded["labels"]["columns"] == {"negative": 0, "neutral": 1, "positive": 2}
    assert recorded["variants"] == ["fp32", "int8"]
    assert recorded["max_length"] == {"declared": 128, "tokens_run": {"fp32": 128, "int8": 128}}
    assert skipped["labels"] == {
        "skipped": "language 'de': the label probe texts are English ('en')"
    }
