"""Training the torch predictor: deterministic under its seed, its graph checked against torch,
missing features filled as in training, and a planted signal learnt.

Four simulated symbols over half a year (about 400 training rows) and few epochs keep each
training to about a second.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from marketsense.common.features import FEATURE_COLUMNS, SENTIMENT_COLUMNS, TECHNICAL_COLUMNS
from marketsense.modelkit.baseline import split_holdout, write_checked_bundle
from marketsense.modelkit.torch_predictor import (
    PARITY_TOLERANCE,
    TorchSettings,
    build_network,
    daily_rank_correlation,
    deterministic_torch,
    fit,
    imputation,
    train_torch_predictor,
)
from marketsense.models.files import MODEL_FILE
from marketsense.models.predictor import OnnxPredictor, warm_up_predictor
from tests.predictor_support import planted_table, simulated_table

QUICK = TorchSettings(max_epochs=15, patience=4, batch_size=128)
"""Few epochs: enough to move every weight, cheap enough for a suite."""


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """Four simulated symbols' training table, texts scored with their true tone."""
    return simulated_table()


@pytest.fixture(scope="module")
def bundle(table: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The table's torch predictor, seed 0."""
    folder = tmp_path_factory.mktemp("torch") / "seed-0"
    train_torch_predictor(table, folder, name="torch", source="sim", settings=QUICK)
    return folder


def holdout_rows(table: pd.DataFrame) -> np.ndarray:
    """The held-out rows' features as the trainer holds them out."""
    return split_holdout(table).x_test()


def trained_probabilities(table: pd.DataFrame, seed: int) -> np.ndarray:
    """Torch's held-out probabilities of a network trained on `table` under `seed`, unexported
    (an export takes a second or two; the tests export as few as they can)."""
    split = split_holdout(table)
    with deterministic_torch(seed):
        network = build_network(split.x_train(), QUICK.hidden)
        fit(network, split, QUICK, seed)
        with torch.no_grad():
            probs: np.ndarray = network(torch.tensor(split.x_test()))[:, 1].numpy()
    return probs


def test_the_same_table_and_seed_give_the_same_graph_and_another_seed_another(
    table: pd.DataFrame, bundle: Path, tmp_path: Path
) -> None:
    again = train_torch_predictor(
        table, tmp_path / "again", name="torch", source="sim", settings=QUICK
    )

    rows = holdout_rows(table)
    first = OnnxPredictor(bundle).predict_up(rows)
    assert (tmp_path / "again" / MODEL_FILE).read_bytes() == (bundle / MODEL_FILE).read_bytes()
    assert np.array_equal(OnnxPredictor(tmp_path / "again").predict_up(rows), first)
    assert (again.training["trainer"], again.training["seed"]) == ("torch-mlp", "0")
    assert np.array_equal(trained_probabilities(table, 0), trained_probabilities(table, 0))
    assert np.max(np.abs(trained_probabilities(table, 1) - first)) > 1e-4
    # Training leaves torch's process-wide settings as it found them.
    assert not torch.are_deterministic_algorithms_enabled()


def test_the_served_graph_reproduces_the_metrics_the_manifest_claims(
    table: pd.DataFrame, bundle: Path
) -> None:
    served = OnnxPredictor(bundle)
    warm_up_predictor(served)
    probs = served.predict_up(holdout_rows(table))
    labels = split_holdout(table).test["label"].astype(int)

    metrics = served.manifest.metrics
    assert metrics["holdout_rows"] == len(labels)
    assert metrics["holdout_auc"] == pytest.approx(roc_auc_score(labels, probs), abs=1e-4)
    assert metrics["base_rate_up"] == pytest.approx(labels.mean())
    assert set(metrics) == {
        "holdout_accuracy",
        "holdout_log_loss",
        "holdout_auc",
        "holdout_rows",
        "base_rate_up",
    }
    assert served.manifest.probability_output == "probabilities"


def test_a_graph_a_hundred_thousandth_away_from_torch_is_refused(
    table: pd.DataFrame, bundle: Path, tmp_path: Path
) -> None:
    served = OnnxPredictor(bundle)
    split = split_holdout(table)
    torch_probs = served.predict_up(split.x_test()).astype(np.float64)

    with pytest.raises(RuntimeError, match=r"max diff 2\.0\de-05, tolerance 1e-05"):
        write_checked_bundle(
            tmp_path,
            onnx_bytes=(bundle / MODEL_FILE).read_bytes(),
            manifest=served.manifest,
            split=split,
            probs=torch_probs + 2 * PARITY_TOLERANCE,
            tolerance=PARITY_TOLERANCE,
        )


def test_missing_features_are_filled_in_the_graph_as_training_filled_them(
    table: pd.DataFrame, bundle: Path
) -> None:
    rows = holdout_rows(table)
    sentiment = [FEATURE_COLUMNS.index(c) for c in SENTIMENT_COLUMNS[:-1]]
    rsi = FEATURE_COLUMNS.index("rsi_14")
    missing = rows.copy()
    missing[:, sentiment] = np.nan
    missing[:, rsi] = np.nan
    filled = missing.copy()
    filled[:, sentiment] = 0.0
    filled[:, rsi] = imputation(split_holdout(table).x_train())[rsi]
    served = OnnxPredictor(bundle)

    probs = served.predict_up(missing)

    assert np.isfinite(probs).all()
    assert ((probs > 0) & (probs < 1)).all()
    assert np.allclose(probs, served.predict_up(filled), atol=1e-6)
    # The filled value is the training median, not 0: an RSI of 0 would read as a sell-off.
    assert imputation(split_holdout(table).x_train())[rsi] > 20


def test_a_column_missing_throughout_training_is_filled_with_zero() -> None:
    rows = np.zeros((3, len(FEATURE_COLUMNS)), dtype=np.float32)
    rows[:, 0] = [0.01, -0.02, 0.03]
    rows[:, len(TECHNICAL_COLUMNS) - 1] = np.nan

    fill = imputation(rows)
    network = build_network(rows, hidden=4)

    assert fill[0] == pytest.approx(0.01)
    assert fill[len(TECHNICAL_COLUMNS) - 1] == 0.0
    with torch.no_grad():
        assert torch.isfinite(network(torch.tensor(rows))).all()


def test_a_signal_planted_in_the_mean_sentiment_is_learnt() -> None:
    planted = planted_table(days=60, symbols=20, strength=1.0)
    shuffled = planted.assign(label=planted["label"].sample(frac=1, random_state=0).to_numpy())
    labels = split_holdout(planted).test["label"]

    learnt = roc_auc_score(labels, trained_probabilities(planted, 0))
    chance = roc_auc_score(
        split_holdout(shuffled).test["label"], trained_probabilities(shuffled, 0)
    )

    # Labels that follow the mean sentiment are ranked well; the same rows with the labels
    # shuffled (no signal at all) are not.
    assert learnt > 0.65
    assert chance < 0.6


def test_the_daily_rank_correlation_judges_each_days_order_whatever_its_level() -> None:
    days = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    labels = np.array([0, 0, 1, 1, 1, 0, 1, 0, 1, 1])
    right = np.array([0.1, 0.2, 0.3, 0.4, 0.9, 0.1, 0.8, 0.2, 0.5, 0.6])
    # The same order within each day, each day moved by its own constant.
    shifted = right + np.repeat([5.0, -3.0, 1.0], [4, 4, 2])

    perfect = daily_rank_correlation(right, labels, days)

    # Days 0 and 1 are ordered perfectly; day 2's labels do not vary and count as 0.
    assert perfect == pytest.approx((2 * 0.8944272 + 0) / 3)
    assert daily_rank_correlation(shifted, labels, days) == pytest.approx(perfect)
    assert daily_rank_correlation(-right, labels, days) == pytest.approx(-perfect)


def test_the_served_probabilities_keep_the_training_base_rate(
    table: pd.DataFrame, bundle: Path
) -> None:
    split = split_holdout(table)

    probs = OnnxPredictor(bundle).predict_up(split.x_train())

    # The days' offsets are learnt apart from the network; their mean joins its bias.
    assert probs.mean() == pytest.approx(split.train["label"].mean(), abs=0.03)
