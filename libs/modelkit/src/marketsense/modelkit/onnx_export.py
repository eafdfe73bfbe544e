"""Export a torch sentiment classifier to a checked sentiment artifact (fp32 and int8 ONNX).

The gate: the exported graph must give the torch module's logits, within `PARITY_TOLERANCE`, on
padded batches that mix very short and long texts. Nothing is written to the output folder unless
it passes; files are staged next to it and moved in at the end, the manifest last.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from sklearn.metrics import accuracy_score, f1_score

from marketsense.modelkit.sentiment_data import heldout_window, load_split
from marketsense.models.files import MANIFEST_FILE, MODEL_FILE, QUANTIZED_MODEL_FILE, TOKENIZER_FILE
from marketsense.models.sentiment import SentimentManifest, SentimentModel

ProgressCallback = Callable[[str], None]
"""Receives a short description of each build step as it starts."""

OPSET = 23
"""ONNX opset of exported graphs. From opset 23 the exporter writes each scaled-dot-product
attention as one `Attention` node, which onnxruntime runs as a fused kernel."""

OUTPUT_NAME = "logits"
"""Name of the logits output of every exported graph."""

PARITY_TOLERANCE = 1e-4
"""Largest allowed absolute difference between ONNX and torch logits."""

LONG_TOKENS = 120
"""Length of the long parity text, special tokens included (less if the model's limit is lower)."""

MEDIUM_TOKENS = 40
"""Length of the medium parity text."""

PARITY_TEXTS: tuple[tuple[str, ...], ...] = (
    ("Up", "LONG"),
    ("LONG", "Shares fell.", "MEDIUM", "Up"),
    ("Up",),
    ("MEDIUM", "LONG", "Profit warning.", "MEDIUM", "Shares of the group rose sharply today."),
)
"""Batches the gate compares on; `LONG` and `MEDIUM` stand for texts of `LONG_TOKENS` and
`MEDIUM_TOKENS` tokens. A 3-token text padded to the width of a 120-token one is where wrong
attention masking or pooling shows."""

_LONG_SENTENCE = (
    "The group said net sales in the review period rose on stronger demand in Europe and Asia, "
    "while higher energy and raw material costs weighed on the operating margin. "
)

_TORCH_ONNX_REGISTRATION_LOGGER = "torch.onnx._internal.exporter._registration"


class ParityError(RuntimeError):
    """The exported graph's logits differ from the torch module's beyond tolerance."""


def export_onnx(module: torch.nn.Module, path: Path, *, input_names: Sequence[str]) -> None:
    """Export `module` (positional int64 [batch, sequence] inputs to logits) to one ONNX file."""
    # A size of 2 on both axes: the exporter would treat a size of 1 as a constant.
    example = tuple(torch.ones((2, 8), dtype=torch.int64) for _ in input_names)
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    # Only the first input carries the axis names; the others follow it through the graph's own
    # shape constraints. Naming them all makes the exporter warn that the duplicate names are
    # unused, and pytest runs with warnings as errors.
    dynamic_shapes: dict[str, dict[int, object]] = {
        name: {0: batch, 1: sequence}
        if i == 0
        else {0: torch.export.Dim.DYNAMIC, 1: torch.export.Dim.DYNAMIC}
        for i, name in enumerate(input_names)
    }
    module.eval()
    # The exporter logs one warning per torchvision operator it cannot register; we export no
    # torchvision operators, and the lines would bury the CLI's progress display.
    with _drop_log_lines(_TORCH_ONNX_REGISTRATION_LOGGER, "torchvision is not installed"):
        # The TorchScript exporter (dynamo=False) gives wrong logits on padded batches for
        # transformers 5 models; the dynamo exporter does not.
        torch.onnx.export(
            module,
            example,
            str(path),
            dynamo=True,
            input_names=list(input_names),
            output_names=[OUTPUT_NAME],
            dynamic_shapes=dynamic_shapes,
            opset_version=OPSET,
            external_data=False,
            verbose=False,
        )
    onnx.checker.check_model(str(path))


def parity_texts(model: SentimentModel) -> list[list[str]]:
    """`PARITY_TEXTS` with the long and medium placeholders filled in for the model's tokenizer."""
    long_text = _text_of_tokens(model, min(LONG_TOKENS, model.manifest.max_length))
    medium_text = _text_of_tokens(model, MEDIUM_TOKENS)
    return [
        [long_text if t == "LONG" else medium_text if t == "MEDIUM" else t for t in batch]
        for batch in PARITY_TEXTS
    ]


def _text_of_tokens(model: SentimentModel, tokens: int) -> str:
    """A natural-looking text that the model's tokenizer turns into at least `tokens` tokens."""
    words = (_LONG_SENTENCE * (tokens // 8 + 1)).split()
    for end in range(1, len(words) + 1):
        text = " ".join(words[:end])
        if next(iter(model.encode([text]).values())).shape[1] >= tokens:
            return text
    return " ".join(words)


def check_parity(
    module: torch.nn.Module,
    model: SentimentModel,
    *,
    batches: Sequence[Sequence[str]] | None = None,
    tolerance: float = PARITY_TOLERANCE,
) -> float:
    """Largest |ONNX - torch| logit over the batches; raises ParityError above `tolerance`."""
    worst = 0.0
    module.eval()
    for texts in batches if batches is not None else parity_texts(model):
        feed = model.encode(texts)
        served = model.run(feed)
        with torch.inference_mode():
            expected = module(*(torch.from_numpy(feed[n]) for n in model.manifest.input_names))
        diff = float(np.max(np.abs(served - expected.numpy())))
        worst = max(worst, diff)
        if not diff <= tolerance:  # written so that NaN fails too
            shape = tuple(next(iter(feed.values())).shape)
            raise ParityError(
                f"{model.model_file.name} disagrees with the torch model: max |logit diff| "
                f"{diff:.2e} > {tolerance:.0e} on a padded batch of shape {shape}"
            )
    return worst


def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation: int8 weights, activations quantised per batch at run time."""
    # The quantiser suggests its pre-processing step (symbolic shape inference and graph
    # optimisation) on every call; that step cannot infer shapes through the opset-23 Attention
    # node, and onnxruntime optimises the graph when it loads it anyway.
    with _drop_log_lines("root", "Please consider to run pre-processing"):
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            # One weight scale per output column instead of per matrix: on held-out-style text int8
            # then disagrees with fp32 on 2.5% of labels instead of 4.0%, at the same speed.
            per_channel=True,
            # Only the projections. The quantiser mistakes the standard ONNX Attention node for the
            # onnxruntime contrib op of that name and writes an invalid QAttention node otherwise.
            op_types_to_quantize=["MatMul", "Gemm"],
        )


def heldout_metrics(model: SentimentModel) -> tuple[float, float]:
    """Accuracy and macro-F1 of a loaded model on the shipped held-out split."""
    texts, truth = load_split("heldout")
    predicted = np.asarray(model.manifest.labels)[model.probabilities(texts).argmax(axis=1)]
    macro_f1 = f1_score(truth, predicted, labels=sorted(set(truth)), average="macro")
    return float(accuracy_score(truth, predicted)), float(macro_f1)


def library_versions() -> dict[str, str]:
    """Versions of the libraries an artifact was built with, for its lineage."""
    import tokenizers
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def export_sentiment_artifact(
    module: torch.nn.Module,
    out_dir: Path,
    *,
    tokenizer_file: Path,
    name: str,
    version: str,
    labels: Sequence[str],
    max_length: int,
    input_names: Sequence[str],
    metrics: dict[str, float] | None = None,
    source: dict[str, str] | None = None,
    on_progress: ProgressCallback | None = None,
) -> SentimentManifest:
    """Export, gate, quantise and evaluate `module`, then write the artifact to `out_dir`."""
    report = on_progress or (lambda _step: None)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir} exists and is not a folder")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # Staged next to the output so the final moves are renames on one file system.
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".{out_dir.name}.") as tmp:
        staging = Path(tmp)
        shutil.copyfile(tokenizer_file, staging / TOKENIZER_FILE)
        manifest = SentimentManifest(
            name=name,
            version=version,
            labels=list(labels),
            max_length=max_length,
            input_names=list(input_names),
            output_name=OUTPUT_NAME,
            metrics=dict(metrics or {}),
            source={**(source or {}), **_export_lineage()},
        )
        _write_manifest(staging, manifest)

        report(f"exporting to ONNX (torch dynamo exporter, opset {OPSET})")
        export_onnx(module, staging / MODEL_FILE, input_names=input_names)
        threads = max(1, min(4, os.cpu_count() or 1))
        fp32 = SentimentModel(staging, threads=threads)

        report("checking ONNX against torch on padded batches")
        worst = check_parity(module, fp32)

        report("quantising to int8")
        quantize_int8(staging / MODEL_FILE, staging / QUANTIZED_MODEL_FILE)
        int8 = SentimentModel(staging, quantized=True, threads=threads)

        report("evaluating fp32 and int8 on the held-out set")
        accuracy, macro_f1 = heldout_metrics(fp32)
        accuracy_int8, macro_f1_int8 = heldout_metrics(int8)
        manifest.metrics |= {
            "heldout_accuracy": accuracy,
            "heldout_macro_f1": macro_f1,
            "heldout_accuracy_int8": accuracy_int8,
            "heldout_macro_f1_int8": macro_f1_int8,
            "heldout_rows": float(len(load_split("heldout")[0])),
            "parity_max_abs_diff": worst,
        }
        manifest.evaluation_window = heldout_window()
        _write_manifest(staging, manifest)
        _publish(staging, out_dir)
    return manifest


def _export_lineage() -> dict[str, str]:
    return {
        "exporter": f"torch.onnx.export dynamo=True, opset {OPSET}",
        "parity_gate": f"max |logit diff| <= {PARITY_TOLERANCE:.0e} on {len(PARITY_TEXTS)} "
        "padded batches (3 to ~120 tokens)",
        "quantization": "onnxruntime quantize_dynamic, QInt8 per-channel weights, MatMul and Gemm",
        **{f"{lib}_version": v for lib, v in library_versions().items()},
    }


def _write_manifest(directory: Path, manifest: SentimentManifest) -> None:
    (directory / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2), encoding="utf-8")


def _publish(staging: Path, out_dir: Path) -> None:
    """Move the staged files into `out_dir`, the manifest last: readers go by the manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for file in (TOKENIZER_FILE, MODEL_FILE, QUANTIZED_MODEL_FILE, MANIFEST_FILE):
        os.replace(staging / file, out_dir / file)


class _DropLines(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


@contextlib.contextmanager
def _drop_log_lines(logger_name: str, prefix: str) -> Iterator[None]:
    """Drop one known, harmless log message of one logger while the block runs."""
    logger = logging.getLogger() if logger_name == "root" else logging.getLogger(logger_name)
    line_filter = _DropLines(prefix)
    logger.addFilter(line_filter)
    try:
        yield
    finally:
        logger.removeFilter(line_filter)
