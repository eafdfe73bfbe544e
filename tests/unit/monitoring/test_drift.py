"""Feature drift by the two-sample Kolmogorov-Smirnov test: shifted samples drift and same ones
do not; real prices of 2008 drift from the simulated market the baseline learns from."""

from __future__ import annotations

import datetime as dt
import functools

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from marketsense.common.features import FEATURE_COLUMNS, WARMUP_BARS, compute_feature_panel
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.modelkit.baseline import training_table
from marketsense.models.feature_reference import sample_reference
from marketsense.monitoring.drift import MIN_VALUES, drift_summary, feature_drift
from tests.unit.test_real_sample import EARLIEST_RUN_DAY, sample_bars

THRESHOLD, P_VALUE = 0.2, 0.01
"""The settings' defaults."""

TRAINING_END = dt.date(2026, 6, 30)
"""Last day the simulated reference is drawn from; the days after it are served."""

SYMBOLS = [f"SIM{i:02d}" for i in range(15)]


def _frame(**columns: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(columns)


def test_a_shifted_distribution_drifts_and_the_same_one_does_not() -> None:
    rng = np.random.default_rng(7)
    reference = _frame(ret_1d=rng.normal(0, 0.02, 5000), rsi_14=rng.normal(50, 10, 5000))
    current = _frame(ret_1d=rng.normal(0, 0.02, 300), rsi_14=rng.normal(58, 10, 300))

    figures = {f.feature: f for f in feature_drift(current, reference, threshold=0.2, p_value=0.01)}

    assert list(figures) == ["ret_1d", "rsi_14"]  # schema order
    assert not figures["ret_1d"].drifted
    assert figures["ret_1d"].p_value > 0.01
    assert figures["rsi_14"].drifted
    # A shift of 0.8 standard deviations moves the two CDFs apart by about 0.31.
    assert figures["rsi_14"].statistic == pytest.approx(0.31, abs=0.06)
    expected = ks_2samp(current["rsi_14"], reference["rsi_14"])
    assert figures["rsi_14"].statistic == pytest.approx(float(expected.statistic), abs=1e-12)
    assert (figures["rsi_14"].rows, figures["rsi_14"].reference_rows) == (300, 5000)


def test_a_large_statistic_on_too_few_values_to_be_sure_is_not_drift() -> None:
    rng = np.random.default_rng(3)
    reference = _frame(macd=rng.normal(0, 1, 5000))
    current = _frame(macd=rng.normal(0.6, 1, 12))

    (figure,) = feature_drift(current, reference, threshold=0.2, p_value=1e-6)

    assert figure.statistic > 0.2
    assert figure.p_value > 1e-6
    assert not figure.drifted


def test_missing_values_are_left_out_and_a_feature_with_too_few_is_skipped() -> None:
    rng = np.random.default_rng(5)
    mean = rng.normal(0, 0.3, 40)
    mean[: 40 - (MIN_VALUES - 1)] = np.nan  # a day with news for fewer symbols than the minimum
    share = rng.uniform(0, 1, 40)
    share[:5] = np.nan
    current = _frame(sentiment_mean=mean, sentiment_pos_share=share, ret_1d=rng.normal(0, 1, 40))
    reference = _frame(
        sentiment_mean=rng.normal(0, 0.3, 500), sentiment_pos_share=rng.uniform(0, 1, 500)
    )

    figures = feature_drift(current, reference, threshold=0.2, p_value=0.01)

    # ret_1d is not in the reference, sentiment_mean has too few values: only one is tested.
    assert [(f.feature, f.rows, f.reference_rows) for f in figures] == [
        ("sentiment_pos_share", 35, 500)
    ]


def test_the_summary_lists_drifted_features_largest_first_or_is_none() -> None:
    rng = np.random.default_rng(11)
    reference = _frame(ret_1d=rng.normal(0, 1, 2000), macd=rng.normal(0, 1, 2000))
    calm = _frame(ret_1d=rng.normal(0, 1, 400), macd=rng.normal(0, 1, 400))
    shifted = _frame(ret_1d=rng.normal(1.0, 1, 400), macd=rng.normal(2.0, 1, 400))

    assert drift_summary(feature_drift(calm, reference, threshold=0.2, p_value=0.01)) is None
    summary = drift_summary(feature_drift(shifted, reference, threshold=0.2, p_value=0.01))
    assert summary is not None
    assert summary.startswith("2 of 2 features drifted from the reference: macd (KS 0.")
    assert summary.index("macd") < summary.index("ret_1d")


@functools.cache
def _simulated(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A simulated market's reference, sampled from its training rows as the baseline's exporter
    does, and the feature rows of the days served after training."""
    market = SimulatedMarket(seed=seed)
    bars = {
        s: market.daily_bars(s, as_of=dt.date(2026, 12, 2), days=WARMUP_BARS + 560) for s in SYMBOLS
    }
    trained = {s: b[b["date"] <= TRAINING_END] for s, b in bars.items()}
    reference = sample_reference(training_table(trained))
    served = compute_feature_panel(bars)
    return reference, served[served["date"] > TRAINING_END]


def _real_features() -> pd.DataFrame:
    """Features of the real sample on the days its runs cover (March to December 2008)."""
    bars = {}
    for symbol in ("GSPC", "IXIC", "GOOG"):
        frame = sample_bars(symbol)
        bars[symbol] = frame.assign(date=frame["day"]).drop(columns="day")
    features = compute_feature_panel(bars)
    return features[features["date"] >= EARLIEST_RUN_DAY]


def _drifted(current: pd.DataFrame, reference: pd.DataFrame) -> set[str]:
    figures = feature_drift(current, reference, threshold=THRESHOLD, p_value=P_VALUE)
    return {f.feature for f in figures if f.drifted}


@pytest.mark.parametrize("seed", [7, 11])
def test_real_prices_of_2008_drift_from_the_simulated_reference_and_simulated_days_do_not(
    seed: int,
) -> None:
    reference, served = _simulated(seed)

    assert len(reference) == 5000
    assert _drifted(served, reference) == set()
    real = _drifted(_real_features()[list(FEATURE_COLUMNS)], reference)
    # 2008's volatility and its long falls are outside anything the simulated market made.
    assert {"volatility_20d", "macd", "macd_signal"} <= real
