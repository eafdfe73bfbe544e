"""Export a torch sentiment classifier to a checked sentiment artifact (fp32 and int8 ONNX).

The gate: the exported graph must give the torch module's logits, within `PARITY_TOLERANCE`, on
padded batches that mix very short and long texts. The torch module's own probabilities on
`REFERENCE_TEXTS` go into `reference.json`, which the registry holds every served graph to. Nothing
is written to the output folder unless it passes; files are staged next to it and moved in at the
end, the manifest (listing every file with its sha256 and size) last.
"""

from __future__ import annotations

import contextlib
import json
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
from marketsense.models.files import (
    MANIFEST_FILE,
    MODEL_FILE,
    QUANTIZED_MODEL_FILE,
    REFERENCE_FILE,
    TOKENIZER_FILE,
)
from marketsense.models.integrity import ManifestFile, list_files
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

REFERENCE_TEXTS: tuple[str, ...] = (
    "Shares surged after the company raised its full-year profit forecast.",
    "The stock plunged as quarterly revenue missed expectations by a wide margin.",
    "The board will meet on Tuesday.",
    "Up",
    "Profit warning.",
    "Record orders lifted the group's operating margin to its highest level in a decade.",
    "The lender cut 4,000 jobs and wrote down EUR 1.2 billion of bad loans.",
    "Net sales were unchanged at EUR 210 million.",
    "Analysts upgraded the shares to buy, citing strong cash flow.",
    "The company filed for bankruptcy protection on Friday.",
    "Dividend doubled.",
    "Losses widened sharply and the outlook was withdrawn.",
    "The annual general meeting is scheduled for 14 March.",
    "Operating profit rose 35% year on year, beating every analyst estimate.",
    "Regulators fined the bank for misleading customers, and its shares fell 8%.",
    "The company appointed a new chief financial officer.",
    "Sales up 12%, margin up, guidance raised.",
    "Sales down 12%, margin down, guidance cut.",
    "The plant will be closed and production moved abroad, the union said.",
    "Demand was strong in every region and the order backlog reached a record.",
    "It is a shareholder letter.",
    "The merger was approved by both boards and is expected to close in the third quarter.",
    "Earnings collapsed amid weak demand, falling prices and rising costs.",
    "Revenue rose.",
    "Revenue fell.",
    "The company reported a net profit of EUR 5.1 million compared with a loss a year earlier, "
    "and said it expects sales to keep growing in the coming quarters as new contracts start.",
    "The group said net sales in the review period fell on weaker demand in Europe and Asia, "
    "while higher energy and raw material costs pushed the operating result into a loss, and "
    "it warned that the second half would be weaker still.",
    "The shares were traded on the main list of the exchange, where volumes were in line with "
    "the average of the past three months and the index closed the day little changed.",
    "Strong results!",
    "Heavy losses; credit rating cut to junk.",
    "The report will be published at 9:00 local time.",
    "The acquisition is expected to add to earnings per share from the first full year, and the "
    "company raised its dividend for the tenth year running after a record year for orders.",
)
"""Texts whose torch probabilities go into `reference.json`: clear and neutral news, a few words to
a few dozen, so that both the class order and padding over long texts show in the comparison."""

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


def reference_probabilities(
    module: torch.nn.Module, model: SentimentModel, texts: Sequence[str]
) -> np.ndarray:
    """The torch module's class probabilities for `texts`, tokenised as the artifact tokenises."""
    module.eval()
    feed = model.encode(list(texts))
    with torch.inference_mode():
        logits = module(*(torch.from_numpy(feed[n]) for n in model.manifest.input_names))
    return torch.softmax(logits.to(torch.float64), dim=1).numpy()


def write_reference(directory: Path, texts: Sequence[str], probabilities: np.ndarray) -> None:
    """Write `reference.json`: the texts and, per text, each class's probability in label order."""
    content = {"texts": list(texts), "probabilities": probabilities.tolist()}
    (directory / REFERENCE_FILE).write_text(json.dumps(content, indent=1), encoding="utf-8")


def reference_gap(model: SentimentModel, texts: Sequence[str], expected: np.ndarray) -> float:
    """Largest |graph - reference| class probability over `texts`, scored as one padded batch."""
    return float(np.max(np.abs(model.probabilities(list(texts)) - expected)))


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
        report(f"writing {REFERENCE_FILE} (torch probabilities of {len(REFERENCE_TEXTS)} texts)")
        reference = reference_probabilities(module, fp32, REFERENCE_TEXTS)
        write_reference(staging, REFERENCE_TEXTS, reference)
        reference_fp32 = reference_gap(fp32, REFERENCE_TEXTS, reference)
        if not reference_fp32 <= PARITY_TOLERANCE:  # NaN fails too
            raise ParityError(
                f"{MODEL_FILE} gives probabilities up to {reference_fp32:.2e} away from the torch "
                f"model's on {REFERENCE_FILE}; at most {PARITY_TOLERANCE:.0e} is allowed"
            )

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
            "reference_max_abs_diff": reference_fp32,
            "reference_max_abs_diff_int8": reference_gap(int8, REFERENCE_TEXTS, reference),
        }
        manifest.evaluation_window = heldout_window()
        files = list_files(staging)
        _write_manifest(staging, manifest, files)
        _publish(staging, out_dir, [f.name for f in files])
    return read_manifest(out_dir)


def _export_lineage() -> dict[str, str]:
    return {
        "exporter": f"torch.onnx.export dynamo=True, opset {OPSET}",
        "parity_gate": f"max |logit diff| <= {PARITY_TOLERANCE:.0e} on {len(PARITY_TEXTS)} "
        "padded batches (3 to ~120 tokens)",
        "quantization": "onnxruntime quantize_dynamic, QInt8 per-channel weights, MatMul and Gemm",
        **{f"{lib}_version": v for lib, v in library_versions().items()},
    }


def _write_manifest(
    directory: Path, manifest: SentimentManifest, files: Sequence[ManifestFile] = ()
) -> None:
    """Write manifest.json; `files` (every other file, hashed once all are written) goes in it."""
    content = manifest.model_dump(mode="json") | {"files": [f.model_dump() for f in files]}
    (directory / MANIFEST_FILE).write_text(json.dumps(content, indent=2), encoding="utf-8")


def read_manifest(directory: Path) -> SentimentManifest:
    """The manifest an export wrote, as the services read it."""
    return SentimentManifest.model_validate_json(
        (directory / MANIFEST_FILE).read_text(encoding="utf-8")
    )


def _publish(staging: Path, out_dir: Path, names: Sequence[str]) -> None:
    """Move the staged files into `out_dir`, the manifest last: readers go by the manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for file in (*names, MANIFEST_FILE):
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
