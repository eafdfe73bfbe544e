"""`marketsense retention` on the embedded default: a dry run lists what a real pass then
deletes and deletes nothing; a hold keeps a run whole; errors name what to fix."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

from marketsense.common.db.engine import Database
from marketsense.common.retention.config import RetentionSettings
from marketsense.common.store import ObjectStore, store_from_settings
from tests.cli_support import invoke, one_error_line
from tests.conftest import _copied_template
from tests.retention_support import Stored, present, store_history


def _history(home: Path, sqlite_template: Path) -> tuple[Stored, ObjectStore]:
    home.mkdir()
    settings = RetentionSettings(home=home)
    assert _copied_template(sqlite_template, settings.resolved_database_url())
    store = store_from_settings(settings)

    async def write() -> Stored:
        database = Database(settings.resolved_database_url())
        await store.start()
        try:
            return await store_history(database, store, now=dt.datetime.now(dt.UTC))
        finally:
            await database.dispose()

    return asyncio.run(write()), store


def test_apply_dry_run_lists_what_apply_deletes_and_a_hold_keeps_its_run(
    tmp_path: Path, sqlite_template: Path
) -> None:
    env = {"MARKETSENSE_HOME": str(tmp_path / "home")}
    stored, store = _history(tmp_path / "home", sqlite_template)
    keys = list(stored.objects)

    held = invoke("retention", "hold", stored.runs["ancient"], "--reason", "legal", env=env)
    assert held.exit_code == 0, held.stderr
    holds = json.loads(invoke("retention", "holds", "--json", env=env).stdout)
    assert {h["run_id"]: h["reason"] for h in holds} == {
        stored.runs["held"]: "audit",
        stored.runs["ancient"]: "legal",
    }
    dry = invoke("retention", "apply", "--dry-run", "--json", env=env)
    assert dry.exit_code == 0, dry.stderr
    listed = json.loads(dry.stdout)
    assert asyncio.run(present(store, keys)) == set(keys)
    real = json.loads(invoke("retention", "apply", "--json", env=env).stdout)

    doomed = stored.keys_of("raw-expired", "raw_objects") | stored.keys_of("lineage", "raw_objects")
    assert {item["key"] for item in listed["items"] if item["key"]} == doomed
    assert real["items"] == listed["items"]
    assert (listed["dry_run"], real["dry_run"]) == (True, False)
    assert asyncio.run(present(store, keys)) == set(keys) - doomed


def test_hold_of_an_unknown_run_and_release_without_a_hold_say_what_to_do(
    tmp_path: Path, sqlite_template: Path
) -> None:
    env = {"MARKETSENSE_HOME": str(tmp_path / "home")}
    stored, _ = _history(tmp_path / "home", sqlite_template)

    assert "marketsense run list" in one_error_line(invoke("retention", "hold", "nope", env=env))
    released = invoke("retention", "release", stored.runs["young"], env=env)
    assert "retention holds" in one_error_line(released)
    assert invoke("retention", "release", stored.runs["held"], env=env).exit_code == 0
    assert "no holds" in invoke("retention", "holds", env=env).stdout


def test_apply_on_a_database_never_migrated_says_to_upgrade_it(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()

    result = invoke("retention", "apply", env={"MARKETSENSE_HOME": str(tmp_path / "home")})

    assert "marketsense db upgrade" in one_error_line(result)
