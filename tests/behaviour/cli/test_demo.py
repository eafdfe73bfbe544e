"""`marketsense demo`: one run through every stage in this process, its predictions printed, and
an exit code saying whether the run succeeded."""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from marketsense.cli.defaults import holdout_set_path
from marketsense.cli.demo import DEMO_UNIVERSE, demo_symbols, run_demo

AS_OF = dt.date(2026, 11, 19)
"""A Thursday: the simulated market has bars for it."""
THANKSGIVING = dt.date(2026, 11, 26)
"""No trading day: the demo refuses it, naming the next session, before building anything."""


@pytest.fixture
def home(tmp_path: Path, sentiment_model_dir: Path, predictor_dir: Path) -> Path:
    """A demo home whose models are already built (building them is bootstrap's to test)."""
    home = tmp_path / "demo-home"
    shutil.copytree(sentiment_model_dir, home / "models" / "sentiment")
    shutil.copytree(predictor_dir, home / "models" / "baseline-predictor")
    # The holdout rows the bootstrap adds as the predictor evaluation set before its push.
    shutil.copy(
        holdout_set_path(predictor_dir), holdout_set_path(home / "models" / "baseline-predictor")
    )
    return home


@pytest.fixture(autouse=True)
def restored_logging() -> Iterator[None]:
    """Put the root logger back as it was: the demo configures logging for the whole process."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_demo_symbols_are_the_listed_tickers_then_simulated_names() -> None:
    assert demo_symbols(3) == ["AAPL", "MSFT", "NVDA"]
    assert demo_symbols(len(DEMO_UNIVERSE)) == DEMO_UNIVERSE
    longer = demo_symbols(len(DEMO_UNIVERSE) + 3)
    assert longer[len(DEMO_UNIVERSE) :] == ["SIM000", "SIM001", "SIM002"]
    assert len(set(demo_symbols(500))) == 500


async def test_demo_runs_every_stage_prints_predictions_and_fails_on_a_refused_run(
    home: Path,
) -> None:
    console = Console(record=True, width=200)

    code = await run_demo(home=home, as_of=AS_OF, count=3, console=console)
    again_console = Console(record=True, width=200)
    again = await run_demo(home=home, as_of=AS_OF, count=3, console=again_console)
    holiday_console = Console(record=True, width=200)
    holiday = await run_demo(home=home, as_of=THANKSGIVING, count=3, console=holiday_console)

    text = console.export_text()
    assert code == 0, text
    assert re.search(rf"run \S+ for {AS_OF}: SUCCESS \(3 symbols\)", text), text
    assert "registered baseline-predictor v1 as production" in text
    rows = [line for line in text.splitlines() if re.search(r"\b(AAPL|MSFT|NVDA)\b", line)]
    assert len(rows) == 3
    probabilities = [float(re.findall(r"\b0\.\d{3}\b", row)[0]) for row in rows]
    assert probabilities == sorted(probabilities, reverse=True)
    assert all("baseline-predictor v1" in row and AS_OF.isoformat() in row for row in rows)
    assert f"data, objects and models are under {home}" in text
    # The day's run is finished, not live, so a second one starts; nothing is registered twice.
    assert again == 0, again_console.export_text()
    assert "registered" not in again_console.export_text()
    assert holiday == 1
    assert holiday_console.export_text().strip() == (
        "error: 2026-11-26 is not a XNYS trading day (Thanksgiving) — the next is 2026-11-27"
    )
