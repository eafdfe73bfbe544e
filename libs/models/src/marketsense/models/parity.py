"""Each graph a service can serve must give the scores its exporter saw, at its longest input."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from marketsense.models.sentiment import SentimentModel

FP32_TOLERANCE = 1e-4
"""Largest difference in any class probability allowed between the fp32 graph and the exporting
framework's own output (`reference.json`)."""
INT8_TOLERANCE = 0.25
"""Largest difference in any class probability allowed between the int8 graph and the reference
(or the fp32 graph). Dynamic quantisation moves probabilities: on the default model the largest
int8-fp32 difference is 0.18 over the 300 held-out texts (batches of 1 and of 32) and 0.013 on the
label probe texts; a graph of other weights differs by far more."""
TOLERANCES = {"fp32": FP32_TOLERANCE, "int8": INT8_TOLERANCE}
"""Tolerance per served variant."""
REFERENCE_LIMITS = {"texts": 256, "characters": 10_000}
"""Bounds on `reference.json`: texts it may carry, characters per text."""
_FILLER_WORD = "market "


class ParityError(ValueError):
    """A graph whose scores differ from the reference beyond its variant's tolerance."""


@dataclass(frozen=True)
class Reference:
    """Texts and the class probabilities the exporting framework gave them."""

    texts: list[str]
    probabilities: np.ndarray
    """[len(texts), labels], float64."""


def read_reference(path: Path, *, labels: int) -> Reference:
    """`reference.json` as texts and probabilities; ValueError naming what is wrong with it."""
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path.name} is not JSON: {error}") from error
    if not isinstance(raw, dict) or set(raw) != {"texts", "probabilities"}:
        raise ValueError(f'{path.name} must be {{"texts": [...], "probabilities": [[...]]}}')
    texts, rows = raw["texts"], raw["probabilities"]
    if not isinstance(texts, list) or not all(isinstance(t, str) and t for t in texts):
        raise ValueError(f"{path.name} `texts` must be a list of non-empty strings")
    if not 1 <= len(texts) <= REFERENCE_LIMITS["texts"]:
        raise ValueError(
            f"{path.name} holds {len(texts)} texts; 1 to {REFERENCE_LIMITS['texts']} are allowed"
        )
    if max(len(t) for t in texts) > REFERENCE_LIMITS["characters"]:
        raise ValueError(
            f"{path.name} has a text longer than {REFERENCE_LIMITS['characters']} characters"
        )
    try:
        probabilities = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path.name} `probabilities` is not a table of numbers") from error
    if probabilities.shape != (len(texts), labels) or not np.isfinite(probabilities).all():
        raise ValueError(
            f"{path.name} `probabilities` has shape {list(probabilities.shape)}; expected "
            f"[{len(texts)}, {labels}] finite values (one row per text, one column per label)"
        )
    return Reference(texts=texts, probabilities=probabilities)


def check_parity(
    models: Mapping[str, SentimentModel], reference: Reference | None, probe: list[str]
) -> dict[str, dict[str, Any]]:
    """Compare every variant with the reference, or int8 with fp32 on `probe` texts without one.

    Returns per variant what it was compared with and the largest difference; raises
    ParityError naming the graph file and the tolerance it broke.
    """
    if reference is not None:
        against, texts, expected = "reference.json", reference.texts, reference.probabilities
        cause = "the graph does not hold the weights the reference was computed from"
    else:
        against, texts = "model.onnx", probe
        expected = models["fp32"].probabilities(texts).astype(np.float64)
        cause = "the two graphs do not hold the same weights"
    record: dict[str, dict[str, Any]] = {}
    for variant, model in models.items():
        if reference is None and variant == "fp32":
            continue  # the fp32 graph is what the others are compared with
        difference = float(np.abs(model.probabilities(texts) - expected).max())
        tolerance = TOLERANCES[variant]
        if not difference <= tolerance:  # NaN fails too
            raise ParityError(
                f"{model.model_file.name} ({variant}) gives probabilities up to "
                f"{difference:.4g} away from {against} on its {len(texts)} texts; at most "
                f"{tolerance:g} is allowed for {variant}: {cause}; re-export the bundle"
            )
        record[variant] = {
            "against": against,
            "texts": len(texts),
            "max_abs_diff": difference,
            "tolerance": tolerance,
        }
    return record


def longest_text(model: SentimentModel) -> str:
    """A text the model's tokenizer turns into exactly `max_length` tokens (truncating it)."""
    return _FILLER_WORD * model.manifest.max_length


def check_longest_input(model: SentimentModel) -> int:
    """Score one text of the declared `max_length` tokens; return how many tokens it had.

    Raises ValueError naming `max_length` when the graph cannot take that many.
    """
    declared = model.manifest.max_length
    feed = model.encode([longest_text(model)])
    tokens = int(next(iter(feed.values())).shape[1])
    try:
        logits = model.run(feed)
    except Exception as error:  # onnxruntime's errors share no base class beyond Exception
        raise ValueError(
            f"{model.model_file.name} fails on a text of the declared max_length={declared} "
            f"tokens: {error}; set `max_length` in the manifest to at most what the graph "
            "takes (its position embeddings' size)"
        ) from error
    if logits.shape != (1, len(model.manifest.labels)) or not np.isfinite(logits).all():
        raise ValueError(
            f"{model.model_file.name} gives {list(logits.shape)} non-finite or misshapen "
            f"logits for a text of max_length={declared} tokens; lower `max_length`"
        )
    return tokens
