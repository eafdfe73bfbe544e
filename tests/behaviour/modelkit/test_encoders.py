"""The torch modules sentiment artifacts are exported from, loaded offline from local folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    BertModel,
    DistilBertConfig,
    DistilBertForSequenceClassification,
)
from transformers.utils import logging as hf_logging

from marketsense.modelkit.encoders import (
    ClassifierLogits,
    ClassifierLogitsWithoutSegments,
    MeanPooledClassifier,
    accepts_token_type_ids,
    load_config,
    load_encoder,
    load_sequence_classifier,
    minilm_path,
    quiet_loading,
)
from marketsense.models.files import TOKENIZER_FILE
from marketsense.models.sentiment import encode_texts, load_tokenizer

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


def tiny_encoder() -> BertModel:
    """A small random BERT encoder, in eval mode."""
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    model = BertModel(config)
    model.eval()  # type: ignore[no-untyped-call]
    return model


def feed(texts: list[str]) -> tuple[torch.Tensor, ...]:
    """MiniLM's tokenisation of `texts` as one right-padded batch, in `INPUT_NAMES` order."""
    tokenizer = load_tokenizer(minilm_path() / TOKENIZER_FILE, max_length=64)
    encoded = encode_texts(tokenizer, texts, input_names=INPUT_NAMES)
    return tuple(torch.from_numpy(encoded[name]) for name in INPUT_NAMES)


def test_the_packaged_minilm_folder_holds_its_config_tokenizer_and_weights() -> None:
    folder = minilm_path()

    assert {"config.json", TOKENIZER_FILE, "model.safetensors"} <= set(os.listdir(folder))
    assert load_config(folder).model_type == "bert"


def test_the_hub_is_never_reached() -> None:
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_quiet_loading_hides_progress_bars_and_restores_them() -> None:
    hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
    with quiet_loading():
        assert not hf_logging.is_progress_bar_enabled()
    assert hf_logging.is_progress_bar_enabled()

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        with quiet_loading():
            pass
        assert not hf_logging.is_progress_bar_enabled()  # left as it was found
    finally:
        hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


def test_a_local_encoder_loads_in_eval_mode() -> None:
    encoder = load_encoder(minilm_path())

    assert not encoder.training
    assert encoder.config.hidden_size == 384


def test_loading_from_a_folder_without_a_model_fails(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Unrecognized model"):
        load_encoder(tmp_path)


def test_mean_pooling_ignores_padding() -> None:
    classifier = MeanPooledClassifier(tiny_encoder(), torch.nn.Linear(16, 3)).eval()
    short = "Shares rose."
    long = "Shares of the group rose sharply after the company raised its full-year guidance."

    with torch.inference_mode():
        alone = classifier.pooled(*feed([short]))
        padded = classifier.pooled(*feed([short, long]))
        logits = classifier(*feed([short, long]))
        head_of_pooled = classifier.head(padded)

    assert feed([short, long])[1][0].sum() < feed([short, long])[1].shape[1]  # really padded
    torch.testing.assert_close(padded[0], alone[0], atol=1e-5, rtol=0)
    assert not torch.allclose(padded[0], padded[1])
    assert logits.shape == (2, 3)
    torch.testing.assert_close(logits, head_of_pooled)


def test_classifier_wrappers_return_the_models_logits(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = DistilBertConfig(
        vocab_size=30522,
        dim=16,
        n_layers=1,
        n_heads=2,
        hidden_dim=32,
        id2label={0: "negative", 1: "neutral", 2: "positive"},
    )
    DistilBertForSequenceClassification(config).save_pretrained(tmp_path)
    model = load_sequence_classifier(tmp_path)
    input_ids, attention_mask, _ = feed(["Up", "Shares fell sharply."])

    with torch.inference_mode():
        expected = model(input_ids=input_ids, attention_mask=attention_mask).logits
        wrapped = ClassifierLogitsWithoutSegments(model)(input_ids, attention_mask)

    assert not model.training
    assert not accepts_token_type_ids(model)
    torch.testing.assert_close(wrapped, expected)
    assert wrapped.shape == (2, 3)


def test_bert_takes_segment_ids_and_its_wrapper_passes_them(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        id2label={0: "negative", 1: "positive"},
    )
    BertForSequenceClassification(config).save_pretrained(tmp_path)
    model = load_sequence_classifier(tmp_path)
    input_ids, attention_mask, token_type_ids = feed(["Up", "Down"])
    other_segments = torch.ones_like(token_type_ids)

    with torch.inference_mode():
        logits = ClassifierLogits(model)(input_ids, attention_mask, token_type_ids)
        shifted = ClassifierLogits(model)(input_ids, attention_mask, other_segments)

    assert accepts_token_type_ids(model)
    assert logits.shape == (2, 2)
    assert not torch.allclose(logits, shifted)  # the segment ids reach the model
