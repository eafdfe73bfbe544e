"""The simulated market: determinism, a factor model with clustered volatility, texts that lead."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest

from marketsense.common.calendar import exchange_calendar
from marketsense.common.errors import NonRetryableError, RetryableError
from marketsense.ingestion.sources.base import TEXT_COLUMNS, SourceRejected, SourceUnavailable
from marketsense.ingestion.sources.simulated import SimulatedMarket

AS_OF = dt.date(2026, 11, 20)
SYMBOLS = [f"S{i:02d}" for i in range(30)]


# A crude lexicon, written independently of the simulator's vocabulary: if the wording did not
# carry the tone, this could not read it.
POSITIVE = (
    "beat", "raise", "record", "win", "buyback", "strong", "solid", "growth", "soar", "surge",
    "jump", "rally", "rise", "higher", "climb", "gain", "upgrade", "outperform", "good",
    "bullish", "breakout", "buyer", "bought", "best",
)  # fmt: skip
NEGATIVE = (
    "miss", "trim", "slash", "loss", "fraud", "layoff", "slowing", "delay", "weak", "slip",
    "fall", "decline", "lower", "plunge", "tumble", "sink", "crash", "downgrade",
    "underperform", "bearish", "disaster", "seller", "sold", "soft", "worst", "cut",
)  # fmt: skip


def lexicon_score(text: str) -> float:
    """+1 for text with more positive than negative words, -1 for the reverse, else 0."""
    words = re.findall(r"[a-z]+", text.lower())
    balance = sum(w.startswith(POSITIVE) for w in words) - sum(
        w.startswith(NEGATIVE) for w in words
    )
    return float(np.sign(balance))


def panel(market: SimulatedMarket, *, days: int = 1000) -> pd.DataFrame:
    """Per symbol and day: log return, next day's log return, lexicon tone and true tone."""
    rows = []
    for symbol in SYMBOLS:
        bars = market.daily_bars(symbol, as_of=AS_OF, days=days)
        texts = market.texts(symbol, as_of=AS_OF, days=days)
        lexicon = texts["text"].map(lexicon_score).groupby(texts["date"]).mean()
        ret = np.log(bars["close"]).diff()
        rows.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "date": pd.to_datetime(bars["date"]),
                    "ret": ret.to_numpy(),
                    "next_ret": ret.shift(-1).to_numpy(),
                    "lexicon": lexicon.reindex(bars["date"]).to_numpy(),
                    "tone": market.daily_tone(symbol, as_of=AS_OF, days=days).to_numpy(),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def corr(frame: pd.DataFrame, a: str, b: str) -> float:
    """Correlation of two columns over rows where both are set."""
    both = frame[[a, b]].dropna()
    return float(np.corrcoef(both[a], both[b])[0, 1])


def test_same_seed_gives_the_same_bars_and_texts_and_another_seed_does_not() -> None:
    a = SimulatedMarket(seed=7)
    b = SimulatedMarket(seed=7)
    pd.testing.assert_frame_equal(
        a.daily_bars("AAPL", as_of=AS_OF, days=60), b.daily_bars("AAPL", as_of=AS_OF, days=60)
    )
    pd.testing.assert_frame_equal(
        a.texts("AAPL", as_of=AS_OF, days=60), b.texts("AAPL", as_of=AS_OF, days=60)
    )
    other = SimulatedMarket(seed=8)
    assert not np.allclose(
        a.daily_bars("AAPL", as_of=AS_OF, days=60)["close"],
        other.daily_bars("AAPL", as_of=AS_OF, days=60)["close"],
    )
    assert (
        a.texts("AAPL", as_of=AS_OF, days=60)["text"].tolist()
        != other.texts("AAPL", as_of=AS_OF, days=60)["text"].tolist()
    )


@pytest.mark.parametrize("later_first", [False, True])
def test_a_later_as_of_extends_the_same_bars_and_texts(later_first: bool) -> None:
    market = SimulatedMarket(seed=7)
    later_day = AS_OF + dt.timedelta(days=45)
    if later_first:  # a warm cache of the longer history must not change the shorter one
        market.daily_bars("MSFT", as_of=later_day, days=10)
    bars = market.daily_bars("MSFT", as_of=AS_OF, days=80)
    texts = market.texts("MSFT", as_of=AS_OF, days=80)
    fresh = SimulatedMarket(seed=7)
    later_bars = fresh.daily_bars("MSFT", as_of=later_day, days=200)
    later_texts = fresh.texts("MSFT", as_of=later_day, days=200)

    pd.testing.assert_frame_equal(
        bars, later_bars[later_bars["date"] <= AS_OF].tail(80).reset_index(drop=True)
    )
    assert later_bars["date"].iloc[-1] > AS_OF  # the later history really is longer
    kept = later_texts[
        (later_texts["date"] >= bars["date"].iloc[0]) & (later_texts["date"] <= AS_OF)
    ].reset_index(drop=True)
    assert len(texts) > 50
    pd.testing.assert_frame_equal(texts, kept)


def test_bars_and_texts_are_well_formed() -> None:
    market = SimulatedMarket(seed=7)
    bars = market.daily_bars("NVDA", as_of=AS_OF, days=250)
    texts = market.texts("NVDA", as_of=AS_OF, days=250)

    assert len(bars) == 250
    assert bars["date"].iloc[-1] == AS_OF
    assert all(exchange_calendar().is_session(day) for day in bars["date"])
    assert bars["date"].is_monotonic_increasing
    assert (bars[["open", "high", "low", "close"]] > 0).all().all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    assert (bars["volume"] > 0).all()

    assert list(texts.columns) == list(TEXT_COLUMNS)
    assert texts["id"].is_unique
    per_day = texts.groupby("date").size().reindex(bars["date"], fill_value=0)
    assert per_day.between(0, 4).all()
    assert set(per_day.unique()) == {0, 1, 2, 3, 4}
    assert set(texts["source"]) == {"news", "post"}
    assert (texts["text"].str.strip().str.len() > 10).all()
    # Each item's day is the session its publication time counts for.
    assert (exchange_calendar().session_of(texts["published_at"]) == texts["date"]).all()
    assert texts["text"].nunique() > 0.4 * len(texts)  # varied wording, not a few stock lines


def test_the_market_trades_only_on_exchange_sessions() -> None:
    market = SimulatedMarket(seed=7)
    bars = market.daily_bars("AAPL", as_of=dt.date(2026, 12, 31), days=260)
    texts = market.texts("AAPL", as_of=dt.date(2026, 12, 31), days=260)
    days = set(bars["date"])

    assert dt.date(2026, 11, 26) not in days  # Thanksgiving
    assert dt.date(2026, 12, 25) not in days  # Christmas
    assert dt.date(2026, 11, 27) in days  # the early close after Thanksgiving
    assert not any(day.weekday() >= 5 for day in days)
    assert days == set(exchange_calendar().sessions(min(days), dt.date(2026, 12, 31)))
    assert set(texts["date"]) <= days
    # Items of the early-close day are published before its 13:00 close in New York.
    early = texts.loc[texts["date"] == dt.date(2026, 11, 27), "published_at"]
    assert (early < pd.Timestamp("2026-11-27T18:00:00Z")).all()


def test_symbols_of_one_sector_move_together_more_than_symbols_of_different_sectors() -> None:
    market = SimulatedMarket(seed=7, sectors=4)
    frame = panel(market, days=750)
    returns = frame.pivot(index="date", columns="symbol", values="ret").dropna()
    correlations = returns.corr().to_numpy()
    names = [str(name) for name in returns.columns]
    same: list[float] = []
    different: list[float] = []
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            pair = float(correlations[i, j])
            (same if market.sector_of(a) == market.sector_of(names[j]) else different).append(pair)
    assert len(same) >= 20
    assert np.mean(same) > np.mean(different) + 0.07
    assert np.mean(different) > 0.1  # the market factor moves everything


def test_volatility_clusters_squared_returns_are_autocorrelated() -> None:
    frame = panel(SimulatedMarket(seed=7), days=1000)
    lag1 = []
    for _, group in frame.groupby("symbol"):
        squared = group["ret"].dropna().to_numpy() ** 2
        lag1.append(np.corrcoef(squared[1:], squared[:-1])[0, 1])
    # i.i.d. returns would give about 0 (standard error about 0.006 for this mean).
    assert np.mean(lag1) > 0.05
    assert np.mean(np.array(lag1) > 0) > 0.8


def test_text_wording_reflects_the_tone() -> None:
    frame = panel(SimulatedMarket(seed=7), days=500)
    assert corr(frame, "lexicon", "tone") > 0.8
    with_texts = frame.dropna(subset=["lexicon"])
    assert with_texts.loc[with_texts["tone"] > 0.6, "lexicon"].mean() > 0.7
    assert with_texts.loc[with_texts["tone"] < -0.6, "lexicon"].mean() < -0.7
    assert with_texts.loc[with_texts["tone"].abs() < 0.1, "lexicon"].abs().mean() < 0.3


def test_text_tone_leads_the_next_return_and_flips_after_the_regime_change() -> None:
    change = dt.date(2024, 12, 31)
    frame = panel(SimulatedMarket(seed=7, regime_change=change, regime_signal_factor=-1.0))
    before = frame[frame["date"] < pd.Timestamp(change)]  # the next return is still before
    after = frame[frame["date"] > pd.Timestamp(change)]
    assert len(before.dropna()) > 5000
    assert len(after.dropna()) > 5000
    assert corr(before, "lexicon", "next_ret") > 0.1
    assert corr(after, "lexicon", "next_ret") < -0.1
    # The tone leads; it does not echo the same day's return.
    assert abs(corr(before, "lexicon", "ret")) < 0.05


def test_without_text_signal_the_tone_does_not_lead_returns() -> None:
    frame = panel(SimulatedMarket(seed=7, text_signal_strength=0.0))
    assert abs(corr(frame, "lexicon", "next_ret")) < 0.03


async def test_fail_symbols_are_rejected_on_every_attempt_and_others_are_served() -> None:
    market = SimulatedMarket(seed=7, fail_symbols={"bad"})
    for _ in range(3):
        with pytest.raises(SourceRejected, match="BAD") as caught:
            await market.fetch("BAD", as_of=AS_OF, days=30)
        assert isinstance(caught.value, NonRetryableError)
    data = await market.fetch("GOOD", as_of=AS_OF, days=30)
    assert len(data.bars) == 30
    assert data.bars["date"].iloc[-1] == AS_OF
    assert not data.texts.empty
    assert data.issues == []


async def test_unavailable_symbols_fail_retryably_on_every_attempt() -> None:
    market = SimulatedMarket(seed=7, unavailable_symbols={"down"})
    for _ in range(5):
        with pytest.raises(SourceUnavailable, match="DOWN") as caught:
            await market.fetch("DOWN", as_of=AS_OF, days=30)
        assert isinstance(caught.value, RetryableError)
    assert len((await market.fetch("UP", as_of=AS_OF, days=30)).bars) == 30


async def outcomes(market: SimulatedMarket, symbol: str, attempts: int) -> list[bool]:
    """Whether each of `attempts` fetches of the symbol succeeded."""
    results = []
    for _ in range(attempts):
        try:
            await market.fetch(symbol, as_of=AS_OF, days=21)
        except SourceUnavailable:
            results.append(False)
        else:
            results.append(True)
    return results


async def test_passing_failures_are_reproducible_and_a_retry_can_succeed() -> None:
    assert issubclass(SourceUnavailable, RetryableError)  # the bus retries it
    symbols = [f"T{i}" for i in range(20)]
    first = {
        s: await outcomes(SimulatedMarket(7, transient_failure_rate=0.5), s, 6) for s in symbols
    }
    again = {
        s: await outcomes(SimulatedMarket(7, transient_failure_rate=0.5), s, 6) for s in symbols
    }
    assert first == again
    flat = [ok for runs in first.values() for ok in runs]
    assert 0.3 < np.mean(flat) < 0.7
    # Some symbol failed its first attempt and got through on a later one.
    assert any(not runs[0] and any(runs[1:]) for runs in first.values())
    other_seed = {
        s: await outcomes(SimulatedMarket(8, transient_failure_rate=0.5), s, 6) for s in symbols
    }
    assert other_seed != first


async def test_failure_rate_zero_never_fails_and_one_always_does() -> None:
    assert all(await outcomes(SimulatedMarket(7, transient_failure_rate=0.0), "A", 10))
    assert not any(await outcomes(SimulatedMarket(7, transient_failure_rate=1.0), "A", 10))


def test_simulated_market_is_deterministic_and_consistent_across_as_of_days() -> None:
    a = SimulatedMarket(seed=7).daily_bars("AAPL", as_of=AS_OF, days=30)
    b = SimulatedMarket(seed=7).daily_bars("AAPL", as_of=AS_OF + dt.timedelta(days=7), days=40)
    pd.testing.assert_frame_equal(a, b[b["date"] <= AS_OF].tail(30).reset_index(drop=True))
    other = SimulatedMarket(seed=8).daily_bars("AAPL", as_of=AS_OF, days=30)
    assert not np.allclose(a["close"], other["close"])
    assert (a["low"] <= a[["open", "close"]].min(axis=1)).all()
    assert (a["high"] >= a[["open", "close"]].max(axis=1)).all()
    assert a["date"].iloc[-1] == AS_OF
