"""The embedded default's models are built once: whichever is missing, and nothing when both are
there."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from marketsense.cli import bootstrap
from marketsense.cli.bootstrap import ensure_models
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.modelkit import sentiment_build
from marketsense.models.files import FEATURE_REFERENCE_FILE, MANIFEST_FILE, MODEL_FILE
from marketsense.models.sentiment import SentimentManifest

AS_OF = dt.date(2026, 11, 23)


def _ensure(home: Path, console: Console) -> None:
    ensure_models(
        sentiment_dir=home / "sentiment",
        predictor_dir=home / "predictor",
        as_of=AS_OF,
        market=SimulatedMarket(seed=5),
        console=console,
    )


def _fingerprint(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()}


def test_models_already_there_are_left_as_they_are(
    tmp_path: Path, sentiment_model_dir: Path, predictor_dir: Path
) -> None:
    shutil.copytree(sentiment_model_dir, tmp_path / "sentiment")
    shutil.copytree(predictor_dir, tmp_path / "predictor")
    before = {name: _fingerprint(tmp_path / name) for name in ("sentiment", "predictor")}
    console = Console(record=True, width=200)

    _ensure(tmp_path, console)

    assert {name: _fingerprint(tmp_path / name) for name in before} == before
    assert console.export_text() == ""


def test_a_missing_predictor_is_trained_with_the_sentiment_model_there(
    tmp_path: Path, sentiment_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(sentiment_model_dir, tmp_path / "sentiment")
    # Fewer symbols than the default keep the test short; what is built is the same.
    monkeypatch.setattr(bootstrap, "DEFAULT_TRAINING_SYMBOLS", 5)
    console = Console(record=True, width=200)

    _ensure(tmp_path, console)

    assert sorted(p.name for p in (tmp_path / "predictor").iterdir()) == [
        FEATURE_REFERENCE_FILE,
        MANIFEST_FILE,
        MODEL_FILE,
    ]
    # The progress bar and status line leave at most blank lines behind.
    [line] = [text for text in console.export_text().splitlines() if text.strip()]
    assert line.startswith("trained baseline-predictor v1: held-out accuracy 0.")
    assert ", AUC 0." in line


def test_a_missing_sentiment_model_is_built_first_and_its_scores_reported(
    tmp_path: Path,
    sentiment_model_dir: Path,
    predictor_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shutil.copytree(predictor_dir, tmp_path / "predictor")
    built: list[Path] = []

    def build(out_dir: Path) -> SentimentManifest:
        # The real build trains from the packaged weights for minutes; the session's copy will do.
        built.append(out_dir)
        shutil.copytree(sentiment_model_dir, out_dir)
        return SentimentManifest.model_validate_json((out_dir / MANIFEST_FILE).read_text())

    monkeypatch.setattr(sentiment_build, "build_default_sentiment_model", build)
    console = Console(record=True, width=200)

    _ensure(tmp_path, console)

    manifest = SentimentManifest.model_validate_json(
        (sentiment_model_dir / MANIFEST_FILE).read_text()
    )
    assert built == [tmp_path / "sentiment"]
    assert console.export_text().splitlines() == [
        f"built {manifest.name} v{manifest.version}: held-out accuracy "
        f"{manifest.metrics['heldout_accuracy']:.3f}, macro-F1 "
        f"{manifest.metrics['heldout_macro_f1']:.3f}"
    ]
