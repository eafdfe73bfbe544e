"""Sentiment artifacts for tests: texts of a clear tone, cheap copies, a tiny FinBERT stand-in."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from transformers import BertConfig, BertForSequenceClassification

from marketsense.modelkit.encoders import minilm_path
from marketsense.models.files import MANIFEST_FILE, TOKENIZER_FILE
from marketsense.models.sentiment import SentimentManifest

POSITIVE = "Profits soared to a record and the company raised its dividend and its forecast."
"""A text any usable sentiment model scores clearly positive."""
NEGATIVE = "The company warned of heavy losses, cut its forecast and will lay off 2,000 staff."
"""A text any usable sentiment model scores clearly negative."""


def read_manifest(directory: Path) -> SentimentManifest:
    """The manifest of the sentiment artifact in `directory`."""
    return SentimentManifest.model_validate_json((directory / MANIFEST_FILE).read_text())


def linked_copy(source: Path, target: Path) -> Path:
    """A copy of an artifact folder whose large graph files are hard links (cheap)."""
    target.mkdir()
    for file in source.iterdir():
        if file.suffix == ".onnx":
            os.link(file, target / file.name)
        else:
            shutil.copyfile(file, target / file.name)
    return target


def save_tiny_classifier(directory: Path) -> Path:
    """A tiny random BertForSequenceClassification saved like a Hub download, MiniLM's tokenizer."""
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


def shift_logits(path: Path, shift: list[float]) -> None:
    """Replace the graph at `path` (a hard link is unlinked first) with one whose logits are
    moved by `shift`: the same file layout, other weights in effect."""
    import onnx
    from onnx import helper, numpy_helper

    graph_model = onnx.load(str(path))
    graph = graph_model.graph
    output = graph.output[0].name
    for node in graph.node:
        node.output[:] = [f"{name}_unshifted" if name == output else name for name in node.output]
    shift_values = numpy_helper.from_array(np.asarray([shift], dtype=np.float32), "logit_shift")
    graph.initializer.append(shift_values)
    graph.node.append(helper.make_node("Add", [f"{output}_unshifted", "logit_shift"], [output]))
    path.unlink()
    onnx.save(graph_model, str(path))


def write_reference(directory: Path, texts: list[str]) -> Path:
    """Write `reference.json`: the fp32 graph's probabilities on `texts`, as an exporter would."""
    from marketsense.models.files import REFERENCE_FILE
    from marketsense.models.sentiment import SentimentModel

    probabilities = SentimentModel(directory).probabilities(texts)
    reference = {"texts": texts, "probabilities": probabilities.astype(float).tolist()}
    (directory / REFERENCE_FILE).write_text(json.dumps(reference), encoding="utf-8")
    return directory
