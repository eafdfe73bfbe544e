"""Turn a local Hugging Face sequence classifier (FinBERT and the like) into a sentiment model."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from marketsense.modelkit.encoders import (
    ClassifierLogits,
    ClassifierLogitsWithoutSegments,
    accepts_token_type_ids,
    load_config,
    load_sequence_classifier,
)
from marketsense.modelkit.onnx_export import ProgressCallback, export_sentiment_artifact
from marketsense.models.files import TOKENIZER_FILE
from marketsense.models.sentiment import SentimentManifest

MAX_POSITIONS = 512
"""Upper bound on tokens per text when neither the tokenizer nor the config sets a lower one."""


def sentiment_labels(id2label: Mapping[int, str]) -> list[str]:
    """Label names in logit order, lower-cased; raises ValueError without negative and positive."""
    labels = [str(id2label[i]).strip().lower() for i in sorted(id2label)]
    missing = [name for name in ("negative", "positive") if name not in labels]
    if missing:
        raise ValueError(
            f"id2label {dict(id2label)} has no {' or '.join(missing)} label: a sentiment model "
            "needs both (names are matched case-insensitively); fix id2label in config.json"
        )
    if len(set(labels)) != len(labels):
        raise ValueError(f"id2label {dict(id2label)} repeats a label name")
    return labels


def export_hf_classifier(
    model_dir: Path,
    out_dir: Path,
    *,
    name: str,
    version: str,
    on_progress: ProgressCallback | None = None,
) -> SentimentManifest:
    """Export a local sequence-classification model to `out_dir` through the same checks as ours."""
    report = on_progress or (lambda _step: None)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"{model_dir} is not a folder")
    for required in ("config.json", TOKENIZER_FILE):
        if not (model_dir / required).is_file():
            hint = (
                " (save the fast tokenizer with AutoTokenizer.from_pretrained(...)"
                ".save_pretrained(folder))"
                if required == TOKENIZER_FILE
                else ""
            )
            raise FileNotFoundError(f"{model_dir} has no {required}{hint}")
    config = load_config(model_dir)
    architectures = list(config.architectures or [])
    if not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise ValueError(
            f"{model_dir} is not a sequence-classification model (architectures: "
            f"{architectures or 'none'}); export-hf needs a *ForSequenceClassification model"
        )
    id2label = {int(k): str(v) for k, v in (config.id2label or {}).items()}
    labels = sentiment_labels(id2label)
    report(f"loading {architectures[0]} from {model_dir}")
    model = load_sequence_classifier(model_dir)
    if accepts_token_type_ids(model):
        module: ClassifierLogits | ClassifierLogitsWithoutSegments = ClassifierLogits(model)
        input_names = ["input_ids", "attention_mask", "token_type_ids"]
    else:
        module = ClassifierLogitsWithoutSegments(model)
        input_names = ["input_ids", "attention_mask"]
    return export_sentiment_artifact(
        module,
        out_dir,
        tokenizer_file=model_dir / TOKENIZER_FILE,
        name=name,
        version=version,
        labels=labels,
        max_length=_max_length(model_dir, config.to_dict()),
        input_names=input_names,
        source={
            "base_model": str(config.name_or_path or model_dir.name),
            "model_dir": str(model_dir.resolve()),
            "architecture": architectures[0],
            "model_type": str(config.model_type),
            "id2label": json.dumps({str(k): v for k, v in sorted(id2label.items())}),
        },
        on_progress=on_progress,
    )


def _max_length(model_dir: Path, config: Mapping[str, object]) -> int:
    """Tokens per text: the tokenizer's own truncation if set, else what the positions allow."""
    truncation = json.loads((model_dir / TOKENIZER_FILE).read_text(encoding="utf-8")).get(
        "truncation"
    )
    if isinstance(truncation, dict) and isinstance(truncation.get("max_length"), int):
        return min(int(truncation["max_length"]), MAX_POSITIONS)
    positions = config.get("max_position_embeddings")
    # RoBERTa-style models reserve two positions for the padding offset.
    offset = 2 if config.get("model_type") in {"roberta", "xlm-roberta", "camembert"} else 0
    if isinstance(positions, int):
        return min(positions - offset, MAX_POSITIONS)
    return MAX_POSITIONS
