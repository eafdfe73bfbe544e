"""The labelled financial sentences the sentiment head learns from and is judged on.

Both splits are generated from templates, deterministically, and shipped as CSV files in `data/`.
The two splits are worded differently on purpose: `train` reads like wire-service and annual-report
sentences (fictional Nordic and European companies, "net sales rose 12% to EUR 40 million"), while
`heldout` reads like market headlines and posts (cashtags, "beats", "tanks", "to Buy"). Held-out
accuracy therefore measures whether the head learnt sentiment rather than the training templates.

Regenerate the files after changing a template in `sentiment_templates`:

    uv run python -m marketsense.modelkit.sentiment_data
"""

from __future__ import annotations

import csv
import hashlib
import io
import random
from importlib import resources
from pathlib import Path
from typing import Literal

from marketsense.modelkit.sentiment_templates import TEMPLATES
from marketsense.models.evaluation import HELDOUT_SET_PATH

LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
"""Class names, in the order of the head's logits."""

SplitName = Literal["train", "heldout"]

SPLIT_ROWS_PER_LABEL: dict[str, int] = {"train": 400, "heldout": 100}
"""Rows of each label in the shipped files (so both splits are balanced)."""

SPLIT_SEEDS: dict[str, int] = {"train": 20_251_126, "heldout": 7_331}
"""Seeds of the shipped files; other seeds give more text of the same style (the benchmark)."""

DATA_DIR = Path(__file__).parent / "data"
"""Where the training split is shipped."""
_SPLIT_PACKAGES = {"train": "marketsense.modelkit", "heldout": "marketsense.models"}
"""The held-out split ships with the serving library: the registry scores every version on it."""
"""Where the shipped CSV files live inside the package."""


def generate_rows(style: SplitName, *, per_label: int, seed: int) -> list[tuple[str, str]]:
    """Distinct (text, label) rows of one split's style, `per_label` of each label, shuffled."""
    if style not in TEMPLATES:
        raise ValueError(f"unknown split style {style!r}: choose one of {sorted(TEMPLATES)}")
    rng = random.Random(seed)
    rows: list[tuple[str, str]] = []
    for label in LABELS:
        templates = TEMPLATES[style][label]()
        seen: set[str] = set()
        attempts = 0
        # Cycling through the templates keeps each one equally represented.
        while len(seen) < per_label:
            attempts += 1
            if attempts > per_label * 50:
                raise ValueError(f"{style}/{label}: templates cannot make {per_label} rows")
            text = templates[attempts % len(templates)](rng)
            if text not in seen:
                seen.add(text)
                rows.append((text, label))
    rng.shuffle(rows)
    return rows


def split_csv(name: SplitName) -> str:
    """The CSV text of a shipped split, generated from its templates and seed."""
    rows = generate_rows(name, per_label=SPLIT_ROWS_PER_LABEL[name], seed=SPLIT_SEEDS[name])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["text", "label"])
    writer.writerows(rows)
    return buffer.getvalue()


def write_splits(directory: Path | None = None) -> dict[str, Path]:
    """Regenerate `sentiment_train.csv` and `sentiment_heldout.csv`, in `directory` if given,
    else where each ships (the held-out split with `marketsense.models`)."""
    written: dict[str, Path] = {}
    for name in ("train", "heldout"):
        folder = directory or (DATA_DIR if name == "train" else HELDOUT_SET_PATH.parent)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"sentiment_{name}.csv"
        path.write_text(split_csv(name), encoding="utf-8")
        written[name] = path
    return written


def split_text(name: str) -> str:
    """The raw CSV text of a shipped split, read from the installed package."""
    if name not in SPLIT_ROWS_PER_LABEL:
        raise ValueError(f"unknown split {name!r}: choose one of {sorted(SPLIT_ROWS_PER_LABEL)}")
    data = resources.files(_SPLIT_PACKAGES[name]).joinpath("data", f"sentiment_{name}.csv")
    return data.read_text(encoding="utf-8")


def load_split(name: str) -> tuple[list[str], list[str]]:
    """Texts and labels of a shipped split (`train` or `heldout`)."""
    reader = csv.DictReader(io.StringIO(split_text(name)))
    texts: list[str] = []
    labels: list[str] = []
    for row in reader:
        texts.append(row["text"])
        labels.append(row["label"])
    return texts, labels


def heldout_window() -> str:
    """Names the held-out set by content, so metrics from different sets are never compared."""
    digest = hashlib.sha256(split_text("heldout").encode()).hexdigest()[:12]
    return f"sentiment_heldout.csv sha256:{digest}"


if __name__ == "__main__":
    for split, path in write_splits().items():
        print(f"{split}: {path}")
