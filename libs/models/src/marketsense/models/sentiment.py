"""Sentiment artifacts at serving time: a tokenizer and an ONNX graph, scored with onnxruntime.

This module is the runtime half of the sentiment model and stays light on purpose: numpy,
onnxruntime, tokenizers and pydantic only. Building and exporting artifacts (torch, transformers)
lives in `marketsense.modelkit`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort
from pydantic import BaseModel, ConfigDict, Field, field_validator
from tokenizers import Tokenizer

from marketsense.common.features import FEATURE_SCHEMA
from marketsense.models.files import (
    MANIFEST_FILE,
    MODEL_FILE,
    QUANTIZED_MODEL_FILE,
    TOKENIZER_FILE,
)
from marketsense.models.integrity import ManifestFile
from marketsense.models.text_screen import DEFAULT_LANGUAGE, Screening, TextScreen

SUPPORTED_INPUTS: tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids")
"""Graph inputs this runtime knows how to fill from a tokenizer encoding."""

MAX_LENGTH_LIMIT = 8192
"""Largest `max_length` a manifest may declare; the registry runs the graph at the declared one."""

ENCODE_CHUNK = 2048
"""Texts tokenised per call: bounds memory on long inputs, still long enough to sort by length."""

# Measured on the default artifact (2 vCPU Xeon, onnxruntime 1.32, 2 threads, 2,000 headline-length
# texts in batches of 32): onnxruntime's fused SkipLayerNormalization kernel is several times slower
# here than the Add and LayerNormalization it replaces. Without the fusion int8 goes from about
# 1,700 to 2,400 texts/s and fp32 from 670 to 760. See docs/sentiment-model.md.
_DISABLED_OPTIMIZERS = ["SkipLayerNormFusion"]


class SentimentManifest(BaseModel):
    """What a sentiment artifact holds and promises: labels, graph signature, measured quality."""

    # A misspelt field would otherwise be dropped in silence and its default used instead.
    model_config = ConfigDict(extra="forbid")

    name: str
    """Model name."""
    version: str
    """Version of this artifact."""
    kind: Literal["sentiment"] = "sentiment"
    """Always `sentiment` for these artifacts."""
    labels: list[str]
    """Class names in the order of the graph's logits; contains `negative` and `positive`."""
    max_length: int = Field(ge=2, le=MAX_LENGTH_LIMIT)
    """Tokens per text, special tokens included; longer texts are truncated. The registry runs
    each graph on a text of exactly this many tokens before it accepts a version."""
    input_names: list[str]
    """Graph inputs (int64, [batch, sequence]), each one of `input_ids`, `attention_mask`,
    `token_type_ids`."""
    output_name: str
    """Graph output with the logits (float32, [batch, len(labels)])."""
    language: str = Field(default=DEFAULT_LANGUAGE, pattern=r"^[a-z]{2,3}$")
    """ISO 639-1 code of the language the model reads; texts detected in another are not scored
    (manifests written before this field read English)."""
    feeds_feature_schema: str = FEATURE_SCHEMA
    """Feature schema whose sentiment columns are computed from this model's scores."""
    metrics: dict[str, float] = Field(default_factory=dict)
    """Held-out evaluation of the fp32 and int8 graphs, and the export parity check."""
    evaluation_window: str | None = None
    """What `metrics` were measured on; promotion compares only versions measured on the same."""
    source: dict[str, str] = Field(default_factory=dict)
    """Lineage: base weights, training data, head, exporter and library versions."""
    created_at: dt.datetime = Field(default_factory=lambda: dt.datetime.now(dt.UTC))
    """When the artifact was built."""
    files: list[ManifestFile] = Field(default_factory=list)
    """Every bundle file but the manifest, with its sha256 and size; required at push (empty
    only in manifests stored before the registry checked files)."""

    @field_validator("labels")
    @classmethod
    def _has_polarity_labels(cls, labels: list[str]) -> list[str]:
        missing = {"negative", "positive"} - set(labels)
        if missing:
            raise ValueError(f"labels {labels} lack {sorted(missing)}; scores need both")
        if len(set(labels)) != len(labels):
            raise ValueError(f"labels {labels} repeat a name")
        return labels


class SentimentModel:
    """A loaded sentiment artifact; shareable between threads, as its session and tokenizer are."""

    def __init__(self, directory: Path, *, quantized: bool = False, threads: int = 1) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, not {threads}")
        self.directory = directory
        self.quantized = quantized
        self.manifest = SentimentManifest.model_validate_json(
            (directory / MANIFEST_FILE).read_text(encoding="utf-8")
        )
        self.model_file = directory / (QUANTIZED_MODEL_FILE if quantized else MODEL_FILE)
        if not self.model_file.is_file():
            raise FileNotFoundError(f"{directory} has no {self.model_file.name}")
        self._tokenizer = load_tokenizer(
            directory / TOKENIZER_FILE, max_length=self.manifest.max_length
        )
        self.text_screen = TextScreen(self._tokenizer, language=self.manifest.language)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(self.model_file),
            options,
            providers=["CPUExecutionProvider"],
            disabled_optimizers=_DISABLED_OPTIMIZERS,
        )
        self._check_signature()
        self._negative = self.manifest.labels.index("negative")
        self._positive = self.manifest.labels.index("positive")

    def _check_signature(self) -> None:
        manifest, where = self.manifest, self.model_file.name
        unsupported = sorted(set(manifest.input_names) - set(SUPPORTED_INPUTS))
        if unsupported:
            raise ValueError(
                f"manifest names inputs {unsupported} that cannot be filled from a tokenizer "
                f"(supported: {list(SUPPORTED_INPUTS)})"
            )
        inputs = {i.name: i.type for i in self._session.get_inputs()}
        if set(inputs) != set(manifest.input_names):
            raise ValueError(
                f"{where} takes inputs {sorted(inputs)} but the manifest names "
                f"{sorted(manifest.input_names)}"
            )
        wrong_type = sorted(name for name, kind in inputs.items() if kind != "tensor(int64)")
        if wrong_type:
            raise ValueError(f"{where} inputs {wrong_type} are not int64 tensors")
        outputs = {o.name: o.shape for o in self._session.get_outputs()}
        if manifest.output_name not in outputs:
            raise ValueError(
                f"{where} has no output {manifest.output_name!r} (has {sorted(outputs)})"
            )
        width = outputs[manifest.output_name][-1]
        if isinstance(width, int) and width != len(manifest.labels):
            raise ValueError(
                f"{where} output {manifest.output_name!r} has {width} columns but the manifest "
                f"names {len(manifest.labels)} labels"
            )

    def screen(self, texts: Sequence[str]) -> Screening:
        """Normalise `texts` and tell which this model can judge (`text_screen` for the rules)."""
        return self.text_screen.screen(texts)

    def judged_scores(
        self, texts: Sequence[str], *, batch_size: int = 32
    ) -> tuple[np.ndarray, Screening]:
        """Scores of the texts this model can judge (their normalised text scored), NaN for the
        others, with the screening that told them apart."""
        screening = self.screen(texts)
        judgeable = screening.judgeable
        scores = np.full(len(texts), np.nan, dtype=np.float32)
        if judgeable.any():
            kept = [text for text, ok in zip(screening.texts, judgeable, strict=True) if ok]
            scores[judgeable] = self.scores(kept, batch_size=batch_size)
        return scores, screening

    def encode(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Graph inputs for `texts` as one batch, padded to its longest text."""
        return encode_texts(self._tokenizer, texts, input_names=self.manifest.input_names)

    def run(self, feed: Mapping[str, np.ndarray]) -> np.ndarray:
        """Logits for one encoded batch ([batch, len(labels)], float32)."""
        (logits,) = self._session.run([self.manifest.output_name], dict(feed))
        return np.asarray(logits, dtype=np.float32)

    def probabilities(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        """Class probabilities per text ([len(texts), len(labels)], float32), in input order."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        result = np.empty((len(texts), len(self.manifest.labels)), dtype=np.float32)
        mask_name = "attention_mask" if "attention_mask" in self.manifest.input_names else None
        for start in range(0, len(texts), ENCODE_CHUNK):
            feed = self.encode(texts[start : start + ENCODE_CHUNK])
            first = next(iter(feed.values()))
            lengths = (
                feed[mask_name].sum(axis=1) if mask_name else np.full(len(first), first.shape[1])
            )
            # Batching texts of similar length wastes little compute on padding; each batch is
            # cut to its own longest text, which padding on the right makes safe.
            order = np.argsort(lengths, kind="stable")
            for offset in range(0, len(order), batch_size):
                rows = order[offset : offset + batch_size]
                width = int(lengths[rows].max())
                logits = self.run({name: array[rows, :width] for name, array in feed.items()})
                result[start + rows] = _softmax(logits)
        return result

    def scores(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        """Sentiment per text in [-1, 1]: P(positive) - P(negative) (float32, input order)."""
        probabilities = self.probabilities(texts, batch_size=batch_size)
        score = probabilities[:, self._positive] - probabilities[:, self._negative]
        # float32 rounding can step a hair past ±1 when one class takes all the mass.
        clipped: np.ndarray = np.clip(score, -1.0, 1.0)
        return clipped


WARM_UP_TEXTS = ("Shares rose after the company beat estimates.", "Guidance was cut again.")
"""Scored once before a model serves, so a graph that cannot run fails before it is swapped in."""


def warm_up_sentiment(model: SentimentModel) -> None:
    """Screen and score two texts and check the scores are usable."""
    # Screening loads the language detector once per process: before serving, not on a task.
    model.screen(WARM_UP_TEXTS)
    scores = model.scores(list(WARM_UP_TEXTS), batch_size=len(WARM_UP_TEXTS))
    if scores.shape != (len(WARM_UP_TEXTS),) or not np.isfinite(scores).all():
        raise ValueError(f"{model.manifest.name} scored warm-up texts as {scores!r}")


def load_sentiment_model(directory: Path, *, quantized: bool, threads: int) -> SentimentModel:
    """A sentiment artifact, int8 when asked for and the artifact has it."""
    return SentimentModel(
        directory,
        quantized=quantized and (directory / QUANTIZED_MODEL_FILE).exists(),
        threads=threads,
    )


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities: np.ndarray = shifted / shifted.sum(axis=1, keepdims=True)
    return probabilities


def load_tokenizer(path: Path, *, max_length: int) -> Tokenizer:
    """A tokenizer.json that truncates to `max_length` and pads on the right to the longest text."""
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_length=max_length)
    saved = tokenizer.padding
    if saved is not None:
        pad_id, pad_token, pad_type_id = saved["pad_id"], saved["pad_token"], saved["pad_type_id"]
    else:
        pad_token = next(
            (t for t in ("[PAD]", "<pad>") if tokenizer.token_to_id(t) is not None), None
        )
        if pad_token is None:
            raise ValueError(f"{path} defines no padding and has no [PAD] or <pad> token")
        pad_id, pad_type_id = tokenizer.token_to_id(pad_token), 0
    # Right padding to the batch's longest text: `probabilities` relies on padding at the end.
    tokenizer.enable_padding(
        direction="right", pad_id=pad_id, pad_type_id=pad_type_id, pad_token=pad_token
    )
    return tokenizer


def encode_texts(
    tokenizer: Tokenizer, texts: Sequence[str], *, input_names: Sequence[str]
) -> dict[str, np.ndarray]:
    """The named graph inputs (int64, [len(texts), longest]) for `texts` as one batch."""
    encodings = tokenizer.encode_batch(list(texts))
    columns = {
        "input_ids": [e.ids for e in encodings],
        "attention_mask": [e.attention_mask for e in encodings],
        "token_type_ids": [e.type_ids for e in encodings],
    }
    width = len(encodings[0].ids) if encodings else 0
    return {
        name: np.asarray(columns[name], dtype=np.int64).reshape(len(encodings), width)
        for name in input_names
    }
