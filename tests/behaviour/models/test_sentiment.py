"""Sentiment artifacts at serving time: loading checks, scoring, tokenisation, warm-up."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace

from marketsense.modelkit.sentiment_data import load_split
from marketsense.models.checks import InvalidUpload, check_sentiment
from marketsense.models.files import MANIFEST_FILE, MODEL_FILE, QUANTIZED_MODEL_FILE, TOKENIZER_FILE
from marketsense.models.sentiment import (
    SentimentManifest,
    SentimentModel,
    encode_texts,
    load_sentiment_model,
    load_tokenizer,
    warm_up_sentiment,
)
from tests.sentiment_support import NEGATIVE, POSITIVE, linked_copy, read_manifest


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


def test_manifest_repeating_a_label_is_rejected(manifest: SentimentManifest) -> None:
    values = manifest.model_dump() | {"labels": ["negative", "positive", "negative"]}
    with pytest.raises(ValueError, match="repeat a name"):
        SentimentManifest.model_validate(values)


def test_loading_an_artifact_with_more_labels_than_the_graph_has_columns_fails(
    sentiment_model_dir: Path, tmp_path: Path
) -> None:
    artifact = linked_copy(sentiment_model_dir, tmp_path / "artifact")
    manifest = json.loads((artifact / MANIFEST_FILE).read_text())
    manifest["labels"] = ["negative", "neutral", "positive", "mixed"]
    (artifact / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="has 3 columns but the manifest names 4 labels"):
        SentimentModel(artifact)


def test_threads_and_batch_sizes_below_one_are_refused(
    sentiment_model_dir: Path, fp32_model: SentimentModel
) -> None:
    with pytest.raises(ValueError, match="threads must be at least 1"):
        SentimentModel(sentiment_model_dir, threads=0)
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        fp32_model.probabilities(["Up"], batch_size=0)


def test_the_int8_graph_is_served_when_asked_for_and_present(sentiment_model_dir: Path) -> None:
    int8 = load_sentiment_model(sentiment_model_dir, quantized=True, threads=1)
    fp32 = load_sentiment_model(sentiment_model_dir, quantized=False, threads=1)

    assert (int8.quantized, int8.model_file.name) == (True, QUANTIZED_MODEL_FILE)
    assert (fp32.quantized, fp32.model_file.name) == (False, MODEL_FILE)


def test_an_artifact_without_an_int8_graph_serves_fp32_and_refuses_a_direct_int8_load(
    sentiment_model_dir: Path, tmp_path: Path
) -> None:
    artifact = linked_copy(sentiment_model_dir, tmp_path / "artifact")
    (artifact / QUANTIZED_MODEL_FILE).unlink()

    served = load_sentiment_model(artifact, quantized=True, threads=1)

    assert (served.quantized, served.model_file.name) == (False, MODEL_FILE)
    with pytest.raises(FileNotFoundError, match=r"has no model\.int8\.onnx"):
        SentimentModel(artifact, quantized=True)


def test_warm_up_passes_a_working_model_and_stops_one_scoring_nonsense(
    fp32_model: SentimentModel, sentiment_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warm_up_sentiment(fp32_model)
    broken = SentimentModel(sentiment_model_dir)
    monkeypatch.setattr(
        broken, "scores", lambda texts, batch_size: np.full(len(texts), np.nan, np.float32)
    )

    with pytest.raises(ValueError, match="scored warm-up texts"):
        warm_up_sentiment(broken)


def test_the_tokenizer_truncates_and_pads_on_the_right(sentiment_model_dir: Path) -> None:
    tokenizer = load_tokenizer(sentiment_model_dir / TOKENIZER_FILE, max_length=8)
    names = ["input_ids", "attention_mask", "token_type_ids"]

    feed = encode_texts(tokenizer, ["Up", "word " * 50], input_names=names)

    assert {name: feed[name].shape for name in names} == dict.fromkeys(names, (2, 8))
    assert feed["input_ids"].dtype == np.int64
    assert feed["attention_mask"].tolist() == [[1, 1, 1, 0, 0, 0, 0, 0], [1] * 8]
    assert (feed["input_ids"][0, 3:] == tokenizer.token_to_id("[PAD]")).all()
    assert (feed["token_type_ids"] == 0).all()
    assert encode_texts(tokenizer, [], input_names=names)["input_ids"].shape == (0, 0)


def _word_level_tokenizer(path: Path, vocabulary: list[str]) -> Path:
    """A tokenizer.json splitting on whitespace over `vocabulary`, without padding set."""
    tokenizer = Tokenizer(
        WordLevel({word: i for i, word in enumerate(vocabulary)}, unk_token="[UNK]")
    )
    tokenizer.pre_tokenizer = Whitespace()
    tokenizer.save(str(path))
    return path


def test_a_tokenizer_without_padding_pads_with_its_pad_token_or_is_refused(
    tmp_path: Path,
) -> None:
    with_pad = _word_level_tokenizer(tmp_path / "pad.json", ["[UNK]", "up", "down", "<pad>"])
    without = _word_level_tokenizer(tmp_path / "none.json", ["[UNK]", "up", "down"])

    feed = encode_texts(
        load_tokenizer(with_pad, max_length=4), ["up", "up down"], input_names=["input_ids"]
    )

    assert feed["input_ids"].tolist() == [[1, 3], [1, 2]]
    with pytest.raises(ValueError, match="defines no padding and has no"):
        load_tokenizer(without, max_length=4)


def test_scores_are_the_positive_minus_the_negative_probability(
    fp32_model: SentimentModel,
) -> None:
    texts = [POSITIVE, NEGATIVE, "Shares were flat."]
    labels = read_manifest(fp32_model.directory).labels
    probabilities = fp32_model.probabilities(texts)

    expected = (
        probabilities[:, labels.index("positive")] - probabilities[:, labels.index("negative")]
    )
    np.testing.assert_allclose(fp32_model.scores(texts), expected, atol=1e-6)


def test_a_manifest_without_a_language_reads_english(
    sentiment_model_dir: Path, tmp_path: Path
) -> None:
    artifact = linked_copy(sentiment_model_dir, tmp_path / "artifact")
    manifest = json.loads((artifact / MANIFEST_FILE).read_text())
    manifest.pop("language", None)
    (artifact / MANIFEST_FILE).write_text(json.dumps(manifest))

    model = SentimentModel(artifact)

    assert (model.manifest.language, model.text_screen.language) == ("en", "en")


def test_the_manifests_language_decides_what_is_foreign(
    sentiment_model_dir: Path, tmp_path: Path
) -> None:
    artifact = linked_copy(sentiment_model_dir, tmp_path / "artifact")
    manifest = json.loads((artifact / MANIFEST_FILE).read_text())
    (artifact / MANIFEST_FILE).write_text(json.dumps({**manifest, "language": "de"}))
    german = SentimentModel(artifact)
    english_sentence = "Shares rose after the company beat estimates and raised its guidance."

    screening = german.screen(
        [english_sentence, "Siemens hebt die Prognose nach einem starken Quartal an"]
    )

    assert screening.languages == ["en", None]


def test_a_manifest_naming_a_language_the_screen_cannot_detect_is_refused(
    sentiment_model_dir: Path, tmp_path: Path
) -> None:
    artifact = linked_copy(sentiment_model_dir, tmp_path / "artifact")
    manifest = json.loads((artifact / MANIFEST_FILE).read_text())
    (artifact / MANIFEST_FILE).write_text(json.dumps({**manifest, "language": "tlh"}))

    with pytest.raises(ValueError, match="language 'tlh' is not one the screen can detect"):
        SentimentModel(artifact)


def test_an_upload_reading_a_language_texts_cannot_be_screened_for_is_refused(
    manifest: SentimentManifest, tmp_path: Path
) -> None:
    foreign = manifest.model_copy(update={"language": "tlh"})

    with pytest.raises(InvalidUpload, match="language 'tlh' is not one texts can be screened for"):
        check_sentiment(tmp_path, foreign)


def test_judged_scores_leave_unjudgeable_texts_unscored(int8_model: SentimentModel) -> None:
    texts = [POSITIVE, "😱", "акции упали на 10%", NEGATIVE, "[UNK]", "\u200b\u200b"]

    scores, screening = int8_model.judged_scores(texts, batch_size=2)

    assert np.isnan(scores).tolist() == [False, True, True, False, True, True]
    np.testing.assert_allclose(scores[[0, 3]], int8_model.scores([POSITIVE, NEGATIVE]), atol=1e-6)
    assert screening.judgeable.tolist() == (~np.isnan(scores)).tolist()
    assert np.isnan(int8_model.judged_scores(["😱"])[0]).all()
    assert int8_model.judged_scores([])[0].shape == (0,)
