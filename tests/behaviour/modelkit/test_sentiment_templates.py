"""The sentence templates: every style writes every label, reproducibly, in its own register."""

from __future__ import annotations

import random
import re

import pytest

from marketsense.modelkit.sentiment_data import LABELS
from marketsense.modelkit.sentiment_templates import TEMPLATES

AMOUNTS = re.compile(r" to \w+ ([\d.]+) million from \w+ ([\d.]+) million a year earlier")
"""A train sentence moving from one amount to another: `... to EUR 40.1 million from EUR 35.2
million a year earlier`."""


def sentences(style: str, label: str, *, seeds: int = 20) -> list[str]:
    """What each template of a style and label writes for the first `seeds` seeds."""
    return [
        template(random.Random(seed))
        for template in TEMPLATES[style][label]()
        for seed in range(seeds)
    ]


def test_every_style_has_several_templates_for_every_label() -> None:
    assert set(TEMPLATES) == {"train", "heldout"}
    for style, by_label in TEMPLATES.items():
        assert set(by_label) == set(LABELS), style
        for label in LABELS:
            assert len(by_label[label]()) >= 5, (style, label)


@pytest.mark.parametrize("style", ["train", "heldout"])
def test_a_template_writes_the_same_sentence_from_the_same_seed(style: str) -> None:
    for label in LABELS:
        for template in TEMPLATES[style][label]():
            first = template(random.Random(42))
            assert template(random.Random(42)) == first
            assert first.strip() == first
            assert len(first) > 15
            assert "{" not in first  # no placeholder left unfilled


@pytest.mark.parametrize("style", ["train", "heldout"])
def test_every_template_varies_its_wording_with_the_seed(style: str) -> None:
    for label in LABELS:
        for template in TEMPLATES[style][label]():
            written = {template(random.Random(seed)) for seed in range(20)}
            assert len(written) >= 5, (style, label, sorted(written)[0])


def test_train_sentences_read_like_reports_and_heldout_ones_like_headlines() -> None:
    train = [s for label in LABELS for s in sentences("train", label)]
    heldout = [s for label in LABELS for s in sentences("heldout", label)]

    assert all(s.endswith(".") for s in train)
    assert not any("$" in s for s in train)
    assert sum("$" in s for s in heldout) > len(heldout) / 3  # cashtags
    assert sum(s.endswith(".") for s in heldout) < len(heldout) / 10


def test_a_report_of_a_rise_moves_to_the_larger_amount_and_of_a_fall_to_the_smaller() -> None:
    for label, rising in (("positive", True), ("negative", False)):
        moves = [
            (float(now), float(before))
            for s in sentences("train", label, seeds=200)
            if (found := AMOUNTS.search(s)) is not None
            for now, before in [found.groups()]
        ]
        assert len(moves) >= 100, label
        assert all((now > before) == rising for now, before in moves), label
