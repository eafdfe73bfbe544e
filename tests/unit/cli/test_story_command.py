"""`marketsense demo --story`: its year, the settings it runs with, and the one line it ends with
when it cannot start."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from marketsense.cli import story_command
from marketsense.cli.story_command import plan_of_the_year, story_settings
from marketsense.cli.story_reads import StoryRefused
from tests.cli_support import invoke, one_error_line


@pytest.fixture(autouse=True)
def restored_logging() -> Iterator[None]:
    """Put the root logger back as it was: the command configures logging for the process."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_the_year_is_2025s_sessions_with_the_flip_mid_year() -> None:
    plan = plan_of_the_year()

    assert len(plan.sessions) == 252
    assert plan.sessions[-1] == dt.date(2025, 12, 31)
    assert plan.flip_day == dt.date(2025, 7, 3)
    assert plan.sessions[plan.first_backfill - 1] < plan.flip_day


def test_each_story_gets_a_fresh_database_and_store_beside_the_cached_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(story_command, "LOOP_SETTINGS", {})
    plan = plan_of_the_year()

    settings = story_settings(tmp_path, seed=11, plan=plan, stamp="20261205T120000")

    folder = (tmp_path / "story" / "20261205T120000").resolve()
    assert settings.resolved_database_url() == f"sqlite+aiosqlite:///{folder / 'marketsense.db'}"
    assert settings.resolved_object_store_url() == (folder / "objects").as_uri()
    assert settings.resolved_sentiment_model_path() == tmp_path / "models" / "sentiment"
    assert settings.resolved_predictor_path() == tmp_path / "models" / "story-predictor-2024-12-30"
    assert (settings.market_seed, settings.regime_change) == (11, plan.flip_day)
    assert settings.regime_signal_factor == -1.0


def test_a_build_without_the_loops_settings_is_refused_naming_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(story_command, "LOOP_SETTINGS", {"no_such_setting": 1})

    with pytest.raises(StoryRefused, match="this build has no setting no_such_setting"):
        story_settings(tmp_path, seed=7, plan=plan_of_the_year(), stamp="x")


async def test_a_report_into_a_missing_folder_ends_with_one_line(tmp_path: Path) -> None:
    console = Console(record=True, width=200)

    code = await story_command.story_command(
        home=tmp_path, count=5, seed=7, report=tmp_path / "nowhere" / "r.html", console=console
    )

    assert code == 1
    lines = console.export_text().strip().splitlines()
    assert lines == [
        f"error: --report {tmp_path / 'nowhere' / 'r.html'}: the folder "
        f"{tmp_path / 'nowhere'} does not exist"
    ]
    assert not (tmp_path / "story").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--story", "--as-of", "2025-07-01"], "--as-of does not apply to --story"),
        (["--report", "r.html"], "--report applies to --story only"),
    ],
)
def test_options_that_do_not_go_together_are_refused(args: list[str], message: str) -> None:
    assert message in one_error_line(invoke("demo", *args))
