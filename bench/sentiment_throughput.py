"""Sentiment model throughput: transformers + torch against onnxruntime fp32 and int8, in one run.

All three sides run the same model (all-MiniLM-L6-v2, mean pooling, the head trained by
`build_default_sentiment_model`) on the same batches: held-out-style texts (a fresh seed of the
held-out templates, so not the held-out rows themselves), tokenised once, sorted by length and cut
into batches of 32. Each side gets 2 threads: `torch.set_num_threads(2)` and onnxruntime
`intra_op_num_threads=2`. Rounds alternate between the sides and the best round of each counts.
Prints one JSON line.

    uv run python bench/sentiment_throughput.py --texts 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from marketsense.modelkit.onnx_export import library_versions
from marketsense.modelkit.sentiment_build import (
    INPUT_NAMES,
    default_sentiment_classifier,
    write_default_sentiment_model,
)
from marketsense.modelkit.sentiment_data import generate_rows
from marketsense.models.sentiment import SentimentModel

THREADS = 2
TEXT_SEED = 424_242


def sample_texts(count: int) -> list[str]:
    """`count` held-out-style texts from a seed the shipped held-out split does not use."""
    rows = generate_rows("heldout", per_label=count // 3 + 1, seed=TEXT_SEED)
    return [text for text, _label in rows[:count]]


def make_batches(model: SentimentModel, texts: list[str], size: int) -> list[dict[str, np.ndarray]]:
    """Length-sorted batches of graph inputs, each padded to its own longest text."""
    lengths = model.encode(texts)["attention_mask"].sum(axis=1)
    order = np.argsort(lengths, kind="stable")
    return [
        model.encode([texts[i] for i in order[s : s + size]]) for s in range(0, len(texts), size)
    ]


def timed(run: Callable[[], object]) -> float:
    """Seconds one call of `run` takes."""
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def best_of_rounds(
    groups: list[dict[str, Callable[[], object]]], rounds: int
) -> list[dict[str, float]]:
    """The best seconds of each run of each group over `rounds`, every round running the groups
    in turn, so no side always meets a warmer or cooler machine."""
    best = [dict.fromkeys(group, float("inf")) for group in groups]
    for _ in range(rounds):
        for group, fastest in zip(groups, best, strict=True):
            for name, run in group.items():
                fastest[name] = min(fastest[name], timed(run))
    return best


def summary(
    args: argparse.Namespace,
    *,
    best: dict[str, float],
    best_end_to_end: dict[str, float],
    batches: list[dict[str, np.ndarray]],
    worst_diff: float,
    metrics: dict[str, float],
) -> dict[str, Any]:
    """The JSON line: rates, ratios against torch, accuracy of both graphs, goals met."""
    rates = {name: args.texts / seconds for name, seconds in best.items()}
    gap = metrics["heldout_accuracy"] - metrics["heldout_accuracy_int8"]
    result = {
        "benchmark": "sentiment_throughput",
        "texts": args.texts,
        "batch_size": args.batch_size,
        "threads": THREADS,
        "rounds": args.rounds,
        "mean_tokens_per_text": round(
            float(np.mean([b["attention_mask"].sum(axis=1).mean() for b in batches])), 1
        ),
        "texts_per_s": {name: round(rate) for name, rate in rates.items()},
        "ratio_vs_torch": {
            name: round(rates[name] / rates["torch"], 2) for name in ("onnx_fp32", "onnx_int8")
        },
        "end_to_end_texts_per_s": {
            name: round(args.texts / seconds) for name, seconds in best_end_to_end.items()
        },
        "max_abs_logit_diff_torch_vs_fp32": worst_diff,
        "heldout_accuracy": {
            "fp32": round(metrics["heldout_accuracy"], 4),
            "int8": round(metrics["heldout_accuracy_int8"], 4),
        },
        "heldout_macro_f1": {
            "fp32": round(metrics["heldout_macro_f1"], 4),
            "int8": round(metrics["heldout_macro_f1_int8"], 4),
        },
        "goals_met": {
            "fp32_at_least_1.5x_torch": rates["onnx_fp32"] >= 1.5 * rates["torch"],
            "int8_at_least_3x_torch": rates["onnx_int8"] >= 3 * rates["torch"],
            "int8_accuracy_within_1_point": gap <= 0.01,
        },
        "python": platform.python_version(),
        "versions": library_versions(),
    }
    return result


def main() -> None:
    """Build the model, run the three sides over the same batches, print the rates as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(THREADS)

    classifier, training_metrics = default_sentiment_classifier()
    with tempfile.TemporaryDirectory() as tmp:
        manifest = write_default_sentiment_model(
            classifier, Path(tmp) / "sentiment", training_metrics=training_metrics
        )
        fp32 = SentimentModel(Path(tmp) / "sentiment", threads=THREADS)
        int8 = SentimentModel(Path(tmp) / "sentiment", quantized=True, threads=THREADS)

        texts = sample_texts(args.texts)
        batches = make_batches(fp32, texts, args.batch_size)
        tensors = [[torch.from_numpy(b[name]) for name in INPUT_NAMES] for b in batches]

        def run_torch() -> None:
            with torch.inference_mode():
                for inputs in tensors:
                    classifier(*inputs)

        def run_onnx(model: SentimentModel) -> Callable[[], None]:
            def run() -> None:
                for feed in batches:
                    model.run(feed)

            return run

        sides: dict[str, Callable[[], object]] = {
            "torch": run_torch,
            "onnx_fp32": run_onnx(fp32),
            "onnx_int8": run_onnx(int8),
        }
        end_to_end: dict[str, Callable[[], object]] = {
            "onnx_fp32": lambda: fp32.scores(texts, batch_size=args.batch_size),
            "onnx_int8": lambda: int8.scores(texts, batch_size=args.batch_size),
        }
        for run in [*sides.values(), *end_to_end.values()]:
            run()  # warm-up: first-run allocations and thread-pool start
        best, best_end_to_end = best_of_rounds([sides, end_to_end], args.rounds)

        with torch.inference_mode():
            worst_diff = max(
                float(np.max(np.abs(fp32.run(feed) - classifier(*inputs).numpy())))
                for feed, inputs in zip(batches, tensors, strict=True)
            )

    result = summary(
        args,
        best=best,
        best_end_to_end=best_end_to_end,
        batches=batches,
        worst_diff=worst_diff,
        metrics=manifest.metrics,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
