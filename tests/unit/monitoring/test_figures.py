"""Daily figures of resolved predictions: hits, the book's return and turnover after costs, the
information coefficients and the benchmark, each day from that day's outcomes only."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from marketsense.monitoring.figures import daily_figures
from marketsense.monitoring.performance_types import DAILY_COLUMNS

SESSIONS = [d.date() for d in pd.bdate_range("2026-06-01", periods=41)]


def resolved(scores: dict[str, float], returns: dict[str, float], day: int = 1) -> pd.DataFrame:
    """One outcome day's resolved predictions: scores made on session `day - 1`."""
    return pd.DataFrame(
        {
            "symbol": list(scores),
            "as_of": SESSIONS[day - 1],
            "outcome_day": SESSIONS[day],
            "prob_up": list(scores.values()),
            "realized_return": [returns[s] for s in scores],
        }
    )


def test_one_day_by_hand() -> None:
    scores = {"A": 0.71, "B": 0.32, "C": 0.55, "D": 0.48, "E": 0.6}
    returns = {"A": 0.012, "B": 0.004, "C": -0.006, "D": -0.01, "E": 0.0}

    day = daily_figures(resolved(scores, returns), quantile=0.2, cost_bps=5.0).iloc[0]

    # Right: A (up, up), B? no (down, up), C no (up, down), D (down, down), E no (up, flat).
    assert day["predictions"] == 5
    assert day["hits"] == 2
    # The book: A long +0.5, B short -0.5; A rose (a hit), B rose against the short.
    assert day["book_positions"] == 2
    assert day["book_hits"] == 1
    assert day["gross_return"] == pytest.approx(0.5 * 0.012 - 0.5 * 0.004)
    assert day["turnover"] == pytest.approx(1.0)
    assert day["strategy_return"] == pytest.approx(0.004 - 5e-4)
    assert day["benchmark_return"] == pytest.approx(np.mean(list(returns.values())))
    x, y = list(scores.values()), list(returns.values())
    assert day["ic"] == pytest.approx(stats.pearsonr(x, y).statistic)
    assert day["rank_ic"] == pytest.approx(stats.spearmanr(x, y).statistic)


def reference(frame: pd.DataFrame, quantile: float, cost_bps: float) -> pd.DataFrame:
    """The figures computed plainly, day by day and symbol by symbol."""
    out = {}
    before: dict[str, float] = {}
    for day, rows in frame.groupby("outcome_day", sort=True):
        ranked = sorted(zip(rows["prob_up"], rows["symbol"], rows["realized_return"], strict=True))
        leg = math.floor(len(ranked) * quantile + 1e-9)
        book = {s: -0.5 / leg for _, s, _ in ranked[:leg]} if leg else {}
        book |= {s: 0.5 / leg for _, s, _ in ranked[len(ranked) - leg :]} if leg else {}
        ret = {s: r for _, s, r in ranked}
        traded = sum(abs(book.get(s, 0) - before.get(s, 0)) for s in set(book) | set(before))
        gross = sum(w * ret[s] for s, w in book.items())
        x, y = rows["prob_up"].to_numpy(), rows["realized_return"].to_numpy()
        defined = len(x) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0
        out[day] = {
            "predictions": len(ranked),
            "hits": sum((p > 0.5) == (r > 0) for p, _, r in ranked),
            "book_positions": len(book),
            "book_hits": sum(
                (w > 0 and ret[s] > 0) or (w < 0 and ret[s] < 0) for s, w in book.items()
            ),
            "ic": stats.pearsonr(x, y).statistic if defined else np.nan,
            "rank_ic": stats.spearmanr(x, y).statistic if defined else np.nan,
            "gross_return": gross,
            "turnover": traded,
            "strategy_return": gross - cost_bps / 1e4 * traded,
            "benchmark_return": float(np.mean(y)),
        }
        before = book
    return pd.DataFrame.from_dict(out, orient="index")[list(DAILY_COLUMNS)]


def random_history(seed: int, symbols: int, days: int) -> pd.DataFrame:
    """Resolved predictions over a changing universe, with tied and coarse scores."""
    rng = np.random.default_rng(seed)
    names = [f"S{i:02d}" for i in range(symbols)]
    parts = []
    for d in range(1, days + 1):
        present = [s for s in names if rng.random() > 0.15]  # some symbols miss some days
        scores = np.round(rng.uniform(0.3, 0.7, len(present)), 2)  # coarse, so ties happen
        returns = np.round(rng.normal(0.0005, 0.02, len(present)), 4)
        parts.append(
            resolved(
                dict(zip(present, scores, strict=True)), dict(zip(present, returns, strict=True)), d
            )
        )
    return pd.concat(parts, ignore_index=True)


@pytest.mark.parametrize(
    ("seed", "quantile", "cost_bps"), [(1, 0.2, 5.0), (2, 0.1, 0.0), (3, 0.5, 25.0)]
)
def test_every_figure_equals_the_plain_day_by_day_computation(
    seed: int, quantile: float, cost_bps: float
) -> None:
    frame = random_history(seed, symbols=20, days=40)

    got = daily_figures(frame, quantile=quantile, cost_bps=cost_bps)

    pd.testing.assert_frame_equal(
        got, reference(frame, quantile, cost_bps), check_names=False, check_dtype=False, rtol=1e-9
    )
    assert got.index.name == "day"
    assert got.index.is_monotonic_increasing


def test_the_row_order_does_not_change_any_figure() -> None:
    frame = random_history(4, symbols=15, days=10)

    shuffled = frame.sample(frac=1.0, random_state=9).reset_index(drop=True)

    pd.testing.assert_frame_equal(
        daily_figures(frame, quantile=0.2, cost_bps=5.0),
        daily_figures(shuffled, quantile=0.2, cost_bps=5.0),
    )


def test_a_day_figures_use_only_its_own_outcomes_and_the_scores_before_it() -> None:
    frame = random_history(5, symbols=15, days=6)
    base = daily_figures(frame, quantile=0.2, cost_bps=5.0)
    fourth = SESSIONS[4]

    moved = frame.copy()
    on_day = moved["outcome_day"] == fourth
    moved.loc[on_day, "realized_return"] = -moved.loc[on_day, "realized_return"]
    after = daily_figures(moved, quantile=0.2, cost_bps=5.0)

    # Only the fourth day's return figures change; no other day sees its outcomes, and the
    # book (so its turnover) is set by scores alone.
    changed = (after != base) & ~(after.isna() & base.isna())
    assert set(changed.index[changed.any(axis=1)]) == {fourth}
    at = list(base.index).index(fourth)
    assert after["gross_return"].iloc[at] == pytest.approx(-base["gross_return"].iloc[at])
    assert after["ic"].iloc[at] == pytest.approx(-base["ic"].iloc[at])
    pd.testing.assert_series_equal(after["turnover"], base["turnover"])


@pytest.mark.parametrize("sessions_back", [1, 2])
def test_a_score_dated_on_or_after_its_outcome_day_is_refused(sessions_back: int) -> None:
    # Judged by its own session's return (or an earlier one), a score could have seen it: the
    # look-ahead a book must never be built from.
    frame = random_history(6, symbols=15, days=8)
    position = {day: i for i, day in enumerate(SESSIONS)}
    early = frame.assign(
        outcome_day=[SESSIONS[position[d] - sessions_back] for d in frame["outcome_day"]]
    )

    with pytest.raises(ValueError, match="as_of < outcome_day"):
        daily_figures(early, quantile=0.2, cost_bps=0.0)


def test_ic_is_undefined_with_fewer_than_three_symbols_or_a_constant_side() -> None:
    two = resolved({"A": 0.6, "B": 0.4}, {"A": 0.01, "B": -0.01}, day=1)
    flat_scores = resolved({"A": 0.5, "B": 0.5, "C": 0.5}, {"A": 0.01, "B": 0, "C": -0.01}, day=2)
    flat_returns = resolved({"A": 0.6, "B": 0.5, "C": 0.4}, {"A": 0.0, "B": 0, "C": 0.0}, day=3)

    days = daily_figures(pd.concat([two, flat_scores, flat_returns]), quantile=0.34, cost_bps=0)

    assert days["ic"].isna().all()
    assert days["rank_ic"].isna().all()
    assert np.isfinite(days.drop(columns=["ic", "rank_ic"]).to_numpy(dtype=float)).all()


def test_a_given_benchmark_replaces_the_equal_weight_universe() -> None:
    frame = random_history(7, symbols=10, days=3)
    index_returns = pd.Series([0.01, -0.02, 0.005], index=pd.to_datetime(SESSIONS[1:4]))

    days = daily_figures(frame, quantile=0.2, cost_bps=0, benchmark=index_returns)

    assert list(days["benchmark_return"]) == [0.01, -0.02, 0.005]


def test_a_benchmark_missing_an_outcome_day_is_refused_naming_the_day() -> None:
    frame = random_history(7, symbols=10, days=3)
    index_returns = pd.Series([0.01, 0.005], index=[SESSIONS[1], SESSIONS[3]])

    with pytest.raises(ValueError, match=str(SESSIONS[2])):
        daily_figures(frame, quantile=0.2, cost_bps=0, benchmark=index_returns)


def test_a_day_predicted_twice_counts_once_with_the_later_prediction() -> None:
    once = resolved({"A": 0.9, "B": 0.1, "C": 0.5}, {"A": 0.01, "B": 0.02, "C": 0.0})
    rerun = once.assign(prob_up=[0.1, 0.9, 0.5])

    days = daily_figures(pd.concat([once, rerun]), quantile=0.34, cost_bps=0)

    assert days.iloc[0]["predictions"] == 3
    assert days.iloc[0]["gross_return"] == pytest.approx(0.5 * 0.02 - 0.5 * 0.01)


def test_no_rows_give_an_empty_frame_with_every_column() -> None:
    empty = resolved({}, {}).iloc[:0]

    days = daily_figures(empty, quantile=0.2, cost_bps=5.0)

    assert days.empty
    assert list(days.columns) == list(DAILY_COLUMNS)
    assert days.index.name == "day"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"drop": "prob_up"}, "prob_up"),
        ({"quantile": 0.6}, "strategy_quantile"),
        ({"quantile": 0.0}, "strategy_quantile"),
        ({"cost_bps": -1.0}, "strategy_cost_bps"),
        ({"nan": "realized_return"}, "realized_return"),
    ],
)
def test_bad_input_is_refused_naming_what_to_fix(change: dict[str, object], message: str) -> None:
    frame = resolved({"A": 0.6, "B": 0.4, "C": 0.5}, {"A": 0.01, "B": -0.01, "C": 0.0})
    if "drop" in change:
        frame = frame.drop(columns=[str(change["drop"])])
    if "nan" in change:
        frame.loc[0, str(change["nan"])] = np.nan
    quantile = float(change.get("quantile", 0.2))  # type: ignore[arg-type]
    cost_bps = float(change.get("cost_bps", 5.0))  # type: ignore[arg-type]

    with pytest.raises(ValueError, match=message):
        daily_figures(frame, quantile=quantile, cost_bps=cost_bps)


def large(symbols: int, days: int) -> pd.DataFrame:
    """Uniform scores and normal returns for `symbols` over `days` outcome days."""
    rng = np.random.default_rng(8)
    sessions = np.array([d.date() for d in pd.bdate_range("2019-01-01", periods=days + 1)])
    n = symbols * days
    return pd.DataFrame(
        {
            "symbol": np.tile([f"S{i:05d}" for i in range(symbols)], days),
            "as_of": np.repeat(sessions[:-1], symbols),
            "outcome_day": np.repeat(sessions[1:], symbols),
            "prob_up": rng.random(n),
            "realized_return": rng.normal(0, 0.02, n),
        }
    )


@pytest.mark.parametrize(("symbols", "days"), [(10_000, 1), (50, 2_000)])
def test_a_wide_universe_and_a_long_history_are_computed_whole(symbols: int, days: int) -> None:
    frame = large(symbols, days)

    got = daily_figures(frame, quantile=0.2, cost_bps=5.0)

    assert len(got) == days
    assert (got["predictions"] == symbols).all()
    assert (got["book_positions"] == 2 * (symbols // 5)).all()
    assert got["turnover"].between(0, 2 + 1e-12).all()
    # Random scores carry no information.
    assert abs(got["rank_ic"].mean()) < 0.05
    assert got["hits"].sum() / got["predictions"].sum() == pytest.approx(0.5, abs=0.02)
