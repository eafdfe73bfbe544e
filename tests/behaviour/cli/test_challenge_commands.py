"""`marketsense challenges` against a monitoring service served on loopback: the list, and an
approver's yes and no refused in one line each when the challenge or the registry does not
allow them."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

from typer.testing import Result

from marketsense.common.auth import Role
from marketsense.common.db.engine import Database
from marketsense.common.db.models import Challenge
from tests.cli_support import invoke, one_error_line
from tests.model_registry_rows import new_api_key
from tests.monitoring_api_support import Served, served_monitoring


def _cli(served: Served, *args: str, key: str | None = None) -> Result:
    """`marketsense ARGS` against the served monitoring API, wide enough for whole cells."""
    env = {"MARKETSENSE_MONITORING_URL": served.url, "COLUMNS": "250"}
    return invoke(*args, key=served.key if key is None else key, env=env)


def _store_challenges(tmp_path: Path) -> str:
    """A decided and an undecided challenge in the served database; an approver's key."""

    async def store() -> str:
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'monitoring.db'}")
        try:
            async with database.session() as session:
                session.add_all(
                    [
                        Challenge(
                            model_name="m",
                            champion_version="1",
                            challenger_version="2",
                            state="REJECTED",
                            started_on=dt.date(2026, 9, 2),
                            days=10,
                            champion_sharpe=1.25,
                            challenger_sharpe=-0.5,
                            margin=0.5,
                            decided_at=dt.datetime(2026, 9, 16, 21, tzinfo=dt.UTC),
                            decided_by="monitoring",
                            reason="challenger Sharpe -0.50 does not beat champion Sharpe 1.25",
                        ),
                        Challenge(
                            model_name="m",
                            champion_version="1",
                            challenger_version="3",
                            state="SHADOWING",
                            days=4,
                            margin=0.5,
                        ),
                    ]
                )
                await session.commit()
            return await new_api_key(database, role=Role.APPROVER)
        finally:
            await database.dispose()

    return asyncio.run(store())


def test_challenges_list_shows_each_challenge_newest_first(tmp_path: Path) -> None:
    with served_monitoring(tmp_path, days=None) as served:
        _store_challenges(tmp_path)
        shown = _cli(served, "challenges", "list")
        as_json = _cli(served, "challenges", "list", "--json")

    assert shown.exit_code == 0, shown.stderr
    rows = [line for line in shown.stdout.splitlines() if " v1 " in line]
    assert [row.split()[1] for row in rows] == ["2", "1"]
    assert "SHADOWING" in rows[0]
    assert "-0.50 vs 1.25 (margin 0.50)" in rows[1]
    assert "2026-09-16 21:00 by monitoring" in rows[1]
    body = json.loads(as_json.stdout)
    assert [(c["challenger_version"], c["state"]) for c in body["items"]] == [
        ("3", "SHADOWING"),
        ("2", "REJECTED"),
    ]


def test_decisions_the_challenge_or_the_registry_refuse_are_one_line_each(tmp_path: Path) -> None:
    with served_monitoring(tmp_path, days=None) as served:
        approver = _store_challenges(tmp_path)
        decided = one_error_line(
            _cli(served, "challenges", "reject", "1", "--reason", "no", key=approver)
        )
        early = one_error_line(
            _cli(served, "challenges", "approve", "2", "--reason", "yes", key=approver)
        )
        unreachable = one_error_line(
            _cli(served, "challenges", "reject", "2", "--reason", "no", key=approver)
        )
        reader = one_error_line(_cli(served, "challenges", "reject", "2", "--reason", "no"))

    assert "409" in decided
    assert "challenge 1 is REJECTED" in decided
    assert "409" in early
    assert "only AWAITING_APPROVAL challenges can be approved" in early
    assert "503" in unreachable
    assert "set MARKETSENSE_REGISTRY_URL" in unreachable
    assert "403" in reader
