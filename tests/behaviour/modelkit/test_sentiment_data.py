"""The labelled sentences of the sentiment head: generated, shipped, loaded, named by content."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from marketsense.modelkit import sentiment_data
from marketsense.modelkit.sentiment_data import (
    LABELS,
    SPLIT_ROWS_PER_LABEL,
    generate_rows,
    heldout_window,
    load_split,
    split_csv,
    split_text,
    write_splits,
)
from marketsense.modelkit.sentiment_templates import TEMPLATES


def test_shipped_splits_are_what_the_generator_makes() -> None:
    for name in ("train", "heldout"):
        assert split_text(name) == split_csv(name), f"regenerate {name}: see sentiment_data.py"


def test_splits_are_balanced_and_sized_as_documented() -> None:
    for name, per_label in SPLIT_ROWS_PER_LABEL.items():
        texts, labels = load_split(name)
        assert Counter(labels) == dict.fromkeys(LABELS, per_label)
        assert len(set(texts)) == len(texts)
    assert len(load_split("train")[0]) == 1200
    assert len(load_split("heldout")[0]) == 300


def test_heldout_is_worded_differently_from_train() -> None:
    train = " ".join(load_split("train")[0]).lower()
    heldout_texts = load_split("heldout")[0]
    assert not set(heldout_texts) & set(load_split("train")[0])
    # The held-out style's own words: cashtags, headline verbs, broker calls.
    for word in ("$", "tank", "soar", "plunge", "beats", "misses", "downgrade", "upgrade", "10-q"):
        assert word not in train, word
        assert any(word in t.lower() for t in heldout_texts), word


def test_one_seed_always_gives_the_same_rows_and_another_seed_other_rows() -> None:
    first = generate_rows("heldout", per_label=20, seed=11)

    assert generate_rows("heldout", per_label=20, seed=11) == first
    assert generate_rows("heldout", per_label=20, seed=12) != first


@pytest.mark.parametrize("style", ["train", "heldout"])
def test_generated_rows_are_distinct_balanced_and_shuffled(style: Any) -> None:
    rows = generate_rows(style, per_label=30, seed=5)

    assert Counter(label for _, label in rows) == dict.fromkeys(LABELS, 30)
    assert len({text for text, _ in rows}) == len(rows)
    # Generated label by label, then shuffled: the first rows are not all of the first label.
    assert len({label for _, label in rows[:30]}) > 1


def test_no_rows_asked_for_gives_no_rows() -> None:
    assert generate_rows("train", per_label=0, seed=1) == []


def test_an_unknown_style_is_refused() -> None:
    style: Any = "newswire"
    with pytest.raises(ValueError, match="unknown split style 'newswire'"):
        generate_rows(style, per_label=1, seed=1)


def test_asking_for_more_distinct_rows_than_the_templates_can_write_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One template that always writes the same sentence can make one distinct row, not two.
    monkeypatch.setitem(TEMPLATES["heldout"], "neutral", lambda: (lambda _rng: "Flat again.",))

    assert len(generate_rows("heldout", per_label=1, seed=1)) == len(LABELS)
    with pytest.raises(ValueError, match="heldout/neutral: templates cannot make 2 rows"):
        generate_rows("heldout", per_label=2, seed=1)


def test_written_splits_are_the_files_the_package_ships(tmp_path: Path) -> None:
    written = write_splits(tmp_path / "data")

    assert set(written) == {"train", "heldout"}
    for name, path in written.items():
        assert path == tmp_path / "data" / f"sentiment_{name}.csv"
        assert path.read_text(encoding="utf-8") == split_text(name)


@pytest.mark.parametrize("name", ["test", "validation", ""])
def test_an_unknown_split_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="unknown split"):
        split_text(name)
    with pytest.raises(ValueError, match="unknown split"):
        load_split(name)


def test_heldout_window_names_the_heldout_file_by_its_content(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shipped = heldout_window()
    digest = hashlib.sha256(split_text("heldout").encode()).hexdigest()

    monkeypatch.setattr(sentiment_data, "split_text", lambda _name: "text,label\nUp,positive\n")
    edited = heldout_window()

    assert shipped.startswith("sentiment_heldout.csv sha256:")
    assert digest.startswith(shipped.removeprefix("sentiment_heldout.csv sha256:"))
    assert len(shipped.rsplit(":", 1)[1]) == 12
    assert edited != shipped
