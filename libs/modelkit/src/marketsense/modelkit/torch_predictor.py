"""Train the torch predictor: a small network over the feature row, exported to ONNX.

The imputation and standardisation the logistic model does in scikit-learn are constant buffers
of the network, so the exported graph takes the raw feature row (NaN where a feature is missing)
and fills and scales it as training did. A linear path carries what the logistic model learns; one
small hidden layer, with weight decay, may add what is not linear (how much a day's mean score
means given how many texts and how strong). Each training day has its own offset of the logit,
so that the weights learn which symbols beat the others on a day rather than the day's common
move; training stops when that ordering, judged on the latest training dates (a validation
slice, in time order), stops improving.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd
import torch
from torch import nn

from marketsense.common.features import FEATURE_COLUMNS, FEATURE_SCHEMA, TECHNICAL_COLUMNS
from marketsense.modelkit.baseline import (
    HoldoutSplit,
    holdout_metrics,
    split_holdout,
    write_checked_bundle,
)
from marketsense.models.predictor import PredictorManifest

TRAINER = "torch-mlp"
"""The name the manifest's `training["trainer"]` records."""

OPSET = 17
"""ONNX opset of the exported graph, the logistic model's."""

INPUT_NAME = "features"
"""Name of the graph's input: float32 [batch, len(FEATURE_COLUMNS)]."""

OUTPUT_NAME = "probabilities"
"""Name of the graph's output: [batch, 2], column 1 the probability of an up move."""

PARITY_TOLERANCE = 1e-5
"""Largest difference allowed between the served graph's and torch's probabilities."""


@dataclass(frozen=True)
class TorchSettings:
    """How the network is shaped and trained; the defaults are the benchmarked ones."""

    hidden: int = 16
    """Units of the hidden layer."""
    weight_decay: float = 0.1
    """AdamW weight decay on every weight (not on biases or the constant buffers)."""
    learning_rate: float = 3e-3
    """AdamW learning rate."""
    batch_size: int = 512
    """Rows per optimisation step."""
    max_epochs: int = 60
    """Passes over the training rows at most."""
    patience: int = 6
    """Epochs without a better validation loss before training stops."""
    validation_share: float = 0.2
    """Share of the latest training dates kept to decide when to stop."""


class FeatureNet(nn.Module):
    """Raw feature row to class probabilities: impute, standardise, linear plus hidden path."""

    fill: torch.Tensor
    mean: torch.Tensor
    scale: torch.Tensor

    def __init__(self, fill: np.ndarray, mean: np.ndarray, scale: np.ndarray, hidden: int):
        super().__init__()
        width = len(fill)
        self.register_buffer("fill", torch.tensor(fill, dtype=torch.float32))
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32))
        self.linear = nn.Linear(width, 1)
        self.hidden = nn.Sequential(nn.Linear(width, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def logit(self, rows: torch.Tensor) -> torch.Tensor:
        """The up-move logit of each row."""
        filled = torch.where(torch.isnan(rows), self.fill, rows)
        standard = (filled - self.mean) / self.scale
        out: torch.Tensor = (self.linear(standard) + self.hidden(standard)).squeeze(-1)
        return out

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """Probabilities of down and up, [batch, 2]."""
        up = torch.sigmoid(self.logit(rows))
        return torch.stack([1 - up, up], dim=1)


def imputation(x_train: np.ndarray) -> np.ndarray:
    """The value each column's missing entries take, as the logistic model fills them:
    technical columns the training median (0 where a column is all missing), sentiment 0."""
    fill = np.zeros(x_train.shape[1], dtype=np.float64)
    technical = x_train[:, : len(TECHNICAL_COLUMNS)].astype(np.float64)
    with warnings.catch_warnings():
        # An all-missing column has no median (a warning and NaN); it takes 0.
        warnings.simplefilter("ignore", RuntimeWarning)
        medians = np.nanmedian(technical, axis=0)
    fill[: len(TECHNICAL_COLUMNS)] = np.nan_to_num(medians, nan=0.0)
    return fill


def build_network(x_train: np.ndarray, hidden: int) -> FeatureNet:
    """A network whose buffers impute and standardise as measured on the training rows."""
    fill = imputation(x_train)
    filled = np.where(np.isnan(x_train), fill, x_train).astype(np.float64)
    mean = filled.mean(axis=0)
    scale = filled.std(axis=0)
    # A constant column scales by 1, as scikit-learn's StandardScaler does.
    scale = np.where(scale > 0, scale, 1.0)
    return FeatureNet(fill, mean, scale, hidden)


@contextlib.contextmanager
def deterministic_torch(seed: int) -> Iterator[None]:
    """Seeded, deterministic, one-threaded torch for the block; the previous state after it."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads)


def daily_rank_correlation(scores: np.ndarray, labels: np.ndarray, days: np.ndarray) -> float:
    """Mean over days of the correlation between the day's score ranks and its labels: how well
    the scores order each day's symbols, whatever the day's common move (0 for a day where the
    scores or the labels do not vary)."""
    frame = pd.DataFrame({"day": days, "rank": scores, "label": labels.astype(np.float64)})
    frame["rank"] = frame.groupby("day")["rank"].rank()
    centred = frame[["rank", "label"]] - frame.groupby("day")[["rank", "label"]].transform("mean")
    sums = (
        pd.DataFrame(
            {
                "cross": centred["rank"] * centred["label"],
                "rank_sq": centred["rank"] ** 2,
                "label_sq": centred["label"] ** 2,
                "day": days,
            }
        )
        .groupby("day")[["cross", "rank_sq", "label_sq"]]
        .sum()
    )
    spread = np.sqrt(sums["rank_sq"].to_numpy() * sums["label_sq"].to_numpy())
    per_day = np.divide(
        sums["cross"].to_numpy(), spread, out=np.zeros(len(spread)), where=spread > 0
    )
    return float(per_day.mean())


def fit(
    network: FeatureNet, split: HoldoutSplit, settings: TorchSettings, seed: int
) -> tuple[int, float]:
    """Train on the earlier training dates, stop on the later ones; the best epoch and its
    validation daily rank correlation. The network keeps the best epoch's weights.

    Each training day has its own learnt offset of the logit, so the day's common move (the
    market's, which no row can foresee) does not pull the network's weights; the network
    learns which symbols do better than others on the same day. Validation judges that
    ordering, and the mean offset joins the network's bias at the end so that the served
    probabilities keep the training base rate.
    """
    dates = np.sort(split.train["date"].unique())
    stop_from = dates[int(len(dates) * (1 - settings.validation_share))]
    early = (split.train["date"] < stop_from).to_numpy(copy=True)
    codes, _ = pd.factorize(split.train["date"])
    x = torch.tensor(split.x_train())
    y = torch.from_numpy(split.train["label"].to_numpy(np.float32, copy=True))
    x_fit, y_fit, day_fit = x[early], y[early], torch.from_numpy(codes[early].astype(np.int64))
    x_val, y_val, day_val = x[~early], y[~early].numpy(), codes[~early]
    offsets = nn.Parameter(torch.zeros(int(codes.max()) + 1))
    decayed = [p for n, p in network.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in network.named_parameters() if n.endswith("bias")]
    groups: list[dict[str, Any]] = [
        {"params": decayed, "weight_decay": settings.weight_decay},
        {"params": [*biases, offsets]},
    ]
    optimiser = torch.optim.AdamW(groups, lr=settings.learning_rate, weight_decay=0.0)
    loss = nn.BCEWithLogitsLoss()
    order = torch.Generator().manual_seed(seed)
    best = (0, -np.inf, {k: v.clone() for k, v in network.state_dict().items()}, 0.0)
    for epoch in range(1, settings.max_epochs + 1):
        network.train()
        for batch in torch.split(torch.randperm(len(x_fit), generator=order), settings.batch_size):
            optimiser.zero_grad()
            logits = network.logit(x_fit[batch]) + offsets[day_fit[batch]]
            loss(logits, y_fit[batch]).backward()
            optimiser.step()
        network.eval()
        with torch.no_grad():
            validation = daily_rank_correlation(network.logit(x_val).numpy(), y_val, day_val)
            mean_offset = float(offsets[day_fit].mean())
        if validation > best[1]:
            state = {k: v.clone() for k, v in network.state_dict().items()}
            best = (epoch, validation, state, mean_offset)
        elif epoch - best[0] >= settings.patience:
            break
    network.load_state_dict(best[2])
    with torch.no_grad():
        network.linear.bias.add_(best[3])
    network.eval()
    return best[0], float(best[1])


def export_onnx(network: FeatureNet) -> bytes:
    """The network as an ONNX graph (opset `OPSET`, a dynamic batch axis), serialised."""
    example = torch.zeros((2, len(FEATURE_COLUMNS)), dtype=torch.float32)
    buffer = io.BytesIO()
    with _quiet_exporter():
        program = torch.onnx.export(
            network,
            (example,),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            opset_version=OPSET,
            verbose=False,
        )
    assert program is not None
    model = program.model_proto
    onnx.checker.check_model(model)
    onnx.save_model(model, buffer)
    return buffer.getvalue()


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Keep the exporter's expected warnings out of a trainer's output: it lowers its opset-18
    graph to `OPSET` through the onnx converter and says so, and names torchvision operators it
    skips; a conversion that fails raises, and the graph is checked and compared after."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def train_torch_predictor(
    table: pd.DataFrame,
    directory: Path,
    *,
    name: str,
    version: str = "1",
    source: str,
    seed: int = 0,
    training: Mapping[str, str] | None = None,
    settings: TorchSettings | None = None,
) -> PredictorManifest:
    """Train the network on all but the latest dates of a training table (as `training_table`
    returns), evaluate on those, export to ONNX and check the graph against torch."""
    settings = settings or TorchSettings()
    split = split_holdout(table)
    with deterministic_torch(seed):
        network = build_network(split.x_train(), settings.hidden)
        epoch, validation = fit(network, split, settings, seed)
        with torch.no_grad():
            probs = network(torch.tensor(split.x_test()))[:, 1].numpy().astype(np.float64)
        onnx_bytes = export_onnx(network)
    manifest = PredictorManifest(
        name=name,
        version=version,
        feature_schema=FEATURE_SCHEMA,
        features=list(FEATURE_COLUMNS),
        input_name=INPUT_NAME,
        probability_output=OUTPUT_NAME,
        metrics=holdout_metrics(split.test["label"].astype(int), probs),
        evaluation_window=split.window(source),
        training=split.lineage(
            source,
            {
                "trainer": TRAINER,
                "seed": str(seed),
                "hidden_units": str(settings.hidden),
                "best_epoch": str(epoch),
                "validation_daily_rank_correlation": f"{validation:.6f}",
                **(training or {}),
            },
        ),
    )
    return write_checked_bundle(
        directory,
        onnx_bytes=onnx_bytes,
        manifest=manifest,
        split=split,
        probs=probs,
        tolerance=PARITY_TOLERANCE,
    )
