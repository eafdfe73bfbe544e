"""Fixtures of the modelkit suites: the default artifact loaded, and a tiny FinBERT stand-in.

The default model is built once per session by the `sentiment_model_dir` fixture in
tests/conftest.py (from the packaged all-MiniLM-L6-v2 weights); a tiny randomly initialised BERT
classifier stands in for FinBERT.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from marketsense.modelkit.hf_export import export_hf_classifier
from marketsense.models.sentiment import SentimentManifest, SentimentModel
from tests.sentiment_support import read_manifest, save_tiny_classifier


@pytest.fixture(scope="module")
def manifest(sentiment_model_dir: Path) -> SentimentManifest:
    """The default artifact's manifest."""
    return read_manifest(sentiment_model_dir)


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
    return save_tiny_classifier(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_artifact(tiny_classifier_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny classifier exported through `export_hf_classifier`."""
    out = tmp_path_factory.mktemp("tiny-artifact") / "artifact"
    export_hf_classifier(tiny_classifier_dir, out, name="tiny-bert", version="0")
    return out
