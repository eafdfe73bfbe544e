"""The simulated market's words: headlines and posts whose wording carries the item's tone.

Each tone bucket has its own vocabulary, so a sentiment model can read the tone from the words;
mixed and neutral items use both vocabularies or neither. Every choice comes from the item's
uniform draws, so the same draws always give the same text.
"""

from __future__ import annotations

import datetime as dt
import zlib

import numpy as np
import pandas as pd

from marketsense.ingestion.sources.base import TEXT_COLUMNS, empty_texts

WORDING_DRAWS = 10
"""Uniform draws each item's wording and publication time are picked with."""


def render_texts(
    symbol: str,
    dates: pd.DatetimeIndex,
    *,
    counts: np.ndarray,
    item_tone: np.ndarray,
    filler: np.ndarray,
    wording: np.ndarray,
    start: int,
) -> pd.DataFrame:
    """The text items of days `start` onwards, as a texts frame.

    `counts` holds the items of each day of `dates`; `item_tone`, `filler` and `wording` (uniform
    draws, `WORDING_DRAWS` per item) hold one entry per item, in day order.
    """
    first_item = int(counts[:start].sum())
    if first_item == len(item_tone):
        return empty_texts()
    item_day = np.repeat(np.arange(len(dates)), counts)[first_item:]
    # Rank of each item within its day, for a stable id.
    offsets = np.concatenate([[0], np.cumsum(counts)])[item_day]
    rank = np.arange(first_item, len(item_tone)) - offsets
    draws = wording[first_item:]
    day_ts = dates[item_day]
    # 12:00 to 17:00 UTC: before the New York close even on an early-close day (13:00 New York
    # is 17:00 UTC in summer), so each item counts for its own session.
    published = day_ts.tz_localize("UTC") + pd.to_timedelta(
        (12 * 60 + draws[:, 9] * 300).astype("int64"), unit="min"
    )
    rendered = [
        render_item(symbol, day.date(), float(tone), bool(is_filler), item_draws)
        for day, tone, is_filler, item_draws in zip(
            day_ts,
            item_tone[first_item:],
            filler[first_item:],
            draws,
            strict=True,
        )
    ]
    frame = pd.DataFrame(
        {
            "id": [
                f"sim-{symbol}-{day:%Y%m%d}-{r}"
                for day, r in zip(day_ts, rank.tolist(), strict=True)
            ],
            "published_at": published,
            "date": day_ts.date,
            "source": [source for source, _ in rendered],
            "text": [text for _, text in rendered],
        }
    )
    return frame[list(TEXT_COLUMNS)]


_ANALYSTS = (
    "Northbridge Capital",
    "Halden Securities",
    "Crescent Research",
    "Marlow & Co",
    "Eastgate Partners",
)
_SUFFIXES = ("Inc.", "Corp.", "Holdings", "Group", "Technologies", "Industries")

_UP_MILD = ("rise", "edge higher", "climb", "gain", "move higher")
_UP_STRONG = ("soar", "surge", "jump", "rally sharply", "hit a record high")
_DOWN_MILD = ("slip", "edge lower", "fall", "decline", "drift lower")
_DOWN_STRONG = ("plunge", "tumble", "sink", "crash", "hit a 52-week low")
_GOOD_MILD = (
    "beats earnings estimates",
    "raises its dividend",
    "announces a share buyback",
    "wins a new contract",
    "reports solid revenue growth",
)
_GOOD_STRONG = (
    "crushes earnings estimates",
    "raises full-year guidance",
    "reports record profit",
    "wins a multibillion-dollar contract",
    "posts its strongest quarter ever",
)
_BAD_MILD = (
    "misses earnings estimates",
    "trims its outlook",
    "reports slowing sales",
    "delays a product launch",
    "warns of weaker margins",
)
_BAD_STRONG = (
    "badly misses earnings estimates",
    "slashes full-year guidance",
    "reports a surprise loss",
    "faces a fraud investigation",
    "announces mass layoffs",
)
_ANALYST_UP = (
    "upgrades {t} to buy",
    "raises its price target on {c}",
    "starts {c} at outperform",
)
_ANALYST_DOWN = (
    "downgrades {t} to sell",
    "cuts its price target on {c}",
    "starts {c} at underperform",
)
_POST_UP_MILD = ("looking good", "nice setup here", "buyers stepping in", "solid quarter")
_POST_UP_STRONG = (
    "absolutely crushing it",
    "huge breakout",
    "best quarter in years",
    "very bullish here",
)
_POST_DOWN_MILD = ("looking weak", "sellers in control", "not a great setup", "soft quarter")
_POST_DOWN_STRONG = (
    "total disaster",
    "getting crushed",
    "worst quarter in years",
    "very bearish here",
)
_NEUTRAL_EVENTS = (
    "schedules its quarterly earnings call",
    "will present at an industry conference",
    "names a new chief financial officer",
    "files its annual report",
    "confirms its quarterly dividend",
    "holds its annual shareholder meeting",
)

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
_SESSIONS = ("early", "midday", "late")

_NEWS_UP = (
    "{c} shares {move} after the company {event}",
    "{c} {event}; shares {move} {pct}%",
    "{analyst} {analyst_view}",
    "Why {c} shares {move} today",
    "{c} shares {move} {pct}% in {session} trading as the company {event}",
)
_NEWS_DOWN = _NEWS_UP
_NEWS_NO_VIEW = (
    "{c} {neutral}",
    "{c} shares little changed ahead of {quarter} results",
    "{c} to report {quarter} results on {weekday}",
    "{c} shares trade flat in {session} trading",
    "What to watch at {c} this week",
)
_NEWS_MIXED = (
    "{c} {good_mild}, but {bad_mild}",
    "{c} {bad_mild}, but {good_mild}",
    "{c} shares swing as the company {good_mild} yet {bad_mild}",
)
_POSTS_UP = (
    "${t} {post}",
    "Just bought more ${t}, {post}",
    "${t} shares {move} {pct}% today, {post}",
    "${t} {event}, {post}",
)
_POSTS_DOWN = (
    "${t} {post}",
    "Just sold my ${t}, {post}",
    "${t} shares {move} {pct}% today, {post}",
    "${t} {event}, {post}",
)
_POSTS_NO_VIEW = (
    "Anyone watching ${t} today?",
    "${t} flat so far, waiting for {quarter} numbers",
    "Holding ${t}, no real view either way",
    "What is everyone's take on ${t} into {quarter} earnings?",
    "Watching ${t} {session} today, nothing to add yet",
)
_POSTS_MIXED = (
    "${t} mixed: {good_mild} but {bad_mild}",
    "${t} {post_up} on revenue, {post_down} on margins",
)


def pick(options: tuple[str, ...], u: float) -> str:
    """The option a uniform draw in [0, 1) selects."""
    return options[min(int(u * len(options)), len(options) - 1)]


def render_item(
    symbol: str, day: dt.date, tone: float, filler: bool, u: np.ndarray
) -> tuple[str, str]:
    """The source (`news` or `post`) and wording of one item of the given tone, from its draws `u`
    (`WORDING_DRAWS` uniform numbers in [0, 1)); filler items carry no view whatever their tone."""
    news = bool(u[1] < 0.55)
    company = f"{symbol} {pick(_SUFFIXES, (zlib.crc32(symbol.encode()) % 997) / 997)}"
    strong = abs(tone) > 0.6
    templates: tuple[str, ...]
    move, event, analyst_view, post = "", "", "", ""
    if filler:
        templates = _NEWS_NO_VIEW if news else _POSTS_NO_VIEW
    elif abs(tone) <= 0.2:
        templates = (_NEWS_NO_VIEW + _NEWS_MIXED) if news else (_POSTS_NO_VIEW + _POSTS_MIXED)
    elif tone > 0:
        templates = _NEWS_UP if news else _POSTS_UP
        move = pick(_UP_STRONG if strong else _UP_MILD, u[3])
        event = pick(_GOOD_STRONG if strong else _GOOD_MILD, u[4])
        analyst_view = pick(_ANALYST_UP, u[5])
        post = pick(_POST_UP_STRONG if strong else _POST_UP_MILD, u[5])
    else:
        templates = _NEWS_DOWN if news else _POSTS_DOWN
        move = pick(_DOWN_STRONG if strong else _DOWN_MILD, u[3])
        event = pick(_BAD_STRONG if strong else _BAD_MILD, u[4])
        analyst_view = pick(_ANALYST_DOWN, u[5])
        post = pick(_POST_DOWN_STRONG if strong else _POST_DOWN_MILD, u[5])
    text = pick(templates, u[2]).format(
        c=company,
        t=symbol,
        move=move,
        event=event,
        analyst=pick(_ANALYSTS, u[6]),
        analyst_view=analyst_view.format(c=company, t=symbol),
        post=post,
        pct=f"{0.5 + 6 * abs(tone) * u[6]:.1f}",
        quarter=f"Q{((day.month - 1) // 3 - 1) % 4 + 1}",  # the quarter last reported
        weekday=pick(_WEEKDAYS, u[7]),
        session=pick(_SESSIONS, u[8]),
        neutral=pick(_NEUTRAL_EVENTS, u[3]),
        good_mild=pick(_GOOD_MILD, u[4]),
        bad_mild=pick(_BAD_MILD, u[5]),
        post_up=pick(_POST_UP_MILD, u[7]),
        post_down=pick(_POST_DOWN_MILD, u[8]),
    )
    return ("news" if news else "post"), text
