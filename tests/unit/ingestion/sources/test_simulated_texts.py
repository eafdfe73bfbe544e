"""The simulated market's words: the tone in the wording, ids and times of the items of a window."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest

from marketsense.common.calendar import exchange_calendar
from marketsense.ingestion.sources.base import TEXT_COLUMNS
from marketsense.ingestion.sources.simulated_texts import WORDING_DRAWS, render_item, render_texts

DAY = dt.date(2026, 11, 18)

# A crude lexicon, written independently of the simulator's vocabulary: if the wording did not
# carry the tone, this could not read it.
UP = (
    "beat", "raise", "record", "win", "buyback", "strong", "solid", "growth", "soar", "surge",
    "jump", "rally", "rise", "higher", "climb", "gain", "upgrade", "outperform", "good",
    "bullish", "breakout", "buyer", "bought", "best",
)  # fmt: skip
DOWN = (
    "miss", "trim", "slash", "loss", "fraud", "layoff", "slowing", "delay", "weak", "slip",
    "fall", "decline", "lower", "plunge", "tumble", "sink", "crash", "downgrade",
    "underperform", "bearish", "disaster", "seller", "sold", "soft", "worst", "cut",
)  # fmt: skip


def draws(count: int, seed: int = 0) -> np.ndarray:
    """`count` items' uniform wording draws."""
    return np.random.default_rng(seed).random((count, WORDING_DRAWS))


def view(text: str) -> int:
    """+1 for a text using only upbeat words, -1 for only downbeat ones, else 0."""
    words = re.findall(r"[a-z]+", text.lower())
    up = any(w.startswith(UP) for w in words)
    down = any(w.startswith(DOWN) for w in words)
    return int(up) - int(down)


def test_the_same_draws_always_give_the_same_item() -> None:
    u = draws(1)[0]

    assert render_item("ABC", DAY, 0.7, False, u) == render_item("ABC", DAY, 0.7, False, u.copy())


@pytest.mark.parametrize(("tone", "sign"), [(0.9, 1), (0.4, 1), (-0.4, -1), (-0.9, -1)])
def test_an_items_words_carry_its_tone(tone: float, sign: int) -> None:
    views = [view(render_item("ABC", DAY, tone, False, u)[1]) for u in draws(200)]

    assert all(v in (0, sign) for v in views)  # never the opposite view
    assert views.count(sign) > 0.8 * len(views)


@pytest.mark.parametrize("tone", [0.95, -0.95])
def test_filler_items_carry_no_view_whatever_the_tone(tone: float) -> None:
    texts = [render_item("ABC", DAY, tone, True, u)[1] for u in draws(200)]

    assert {view(text) for text in texts} == {0}


def test_news_and_posts_are_picked_by_the_draw_and_name_the_symbol_their_way() -> None:
    items = [render_item("ABC", DAY, 0.5, False, u) for u in draws(300)]
    news = [text for source, text in items if source == "news"]
    posts = [text for source, text in items if source == "post"]

    assert 0.4 < len(news) / len(items) < 0.7
    assert all("$ABC" in text for text in posts)  # a cashtag
    assert all("$ABC" not in text for text in news)
    assert all(re.search(r"\bABC\b", text) for text in news)


def test_items_naming_a_quarter_name_the_one_last_reported() -> None:
    february = [render_item("ABC", dt.date(2026, 2, 10), 0.0, True, u)[1] for u in draws(300)]
    august = [render_item("ABC", dt.date(2026, 8, 10), 0.0, True, u)[1] for u in draws(300)]

    assert {q for t in february for q in re.findall(r"\bQ\d\b", t)} == {"Q4"}
    assert {q for t in august for q in re.findall(r"\bQ\d\b", t)} == {"Q2"}


def test_a_window_of_items_gets_stable_ids_and_times_within_trading_hours() -> None:
    dates = pd.bdate_range("2026-11-16", periods=3)
    counts = np.array([2, 0, 1])

    frame = render_texts(
        "ABC",
        dates,
        counts=counts,
        item_tone=np.array([0.5, -0.5, 0.0]),
        filler=np.array([False, False, True]),
        wording=draws(3),
        start=0,
    )

    assert list(frame.columns) == list(TEXT_COLUMNS)
    assert frame["id"].tolist() == [
        "sim-ABC-20261116-0",
        "sim-ABC-20261116-1",
        "sim-ABC-20261118-0",
    ]
    assert frame["date"].tolist() == [dt.date(2026, 11, 16)] * 2 + [dt.date(2026, 11, 18)]
    hours = frame["published_at"].dt.hour + frame["published_at"].dt.minute / 60
    assert ((hours >= 12) & (hours < 17)).all()
    assert (exchange_calendar().session_of(frame["published_at"]) == frame["date"]).all()


def test_a_later_window_start_keeps_the_same_items_of_the_days_it_covers() -> None:
    dates = pd.bdate_range("2026-11-16", periods=3)
    items = {
        "counts": np.array([2, 0, 1]),
        "item_tone": np.array([0.5, -0.5, 0.0]),
        "filler": np.array([False, False, True]),
        "wording": draws(3),
    }

    whole = render_texts("ABC", dates, start=0, **items)
    last_day = render_texts("ABC", dates, start=2, **items)
    nothing = render_texts("ABC", dates, start=3, **items)

    pd.testing.assert_frame_equal(last_day, whole.iloc[2:].reset_index(drop=True))
    assert nothing.empty
    assert list(nothing.columns) == list(TEXT_COLUMNS)
