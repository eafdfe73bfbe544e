"""Audit entries: kept exactly when the action they describe commits, details as stable JSON."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select

from marketsense.common.db.engine import Database
from marketsense.common.db.models import OperatorAction
from marketsense.orchestrator.audit.service import SCHEDULER, record_action


async def _entries(database: Database) -> list[OperatorAction]:
    async with database.session() as session:
        return list(await session.scalars(select(OperatorAction).order_by(OperatorAction.id)))


async def test_an_entry_is_kept_only_when_its_transaction_commits(database: Database) -> None:
    async with database.session() as session:
        record_action(session, action="cancel", target="run-1", actor="ops", reason="bad day")
        await session.rollback()
    async with database.session() as session:
        record_action(session, action="retry", target="run-1", actor="ops", reason="source back")
        await session.commit()

    [entry] = await _entries(database)
    assert (entry.action, entry.target, entry.actor, entry.reason) == (
        "retry",
        "run-1",
        "ops",
        "source back",
    )


async def test_details_are_sorted_json_with_dates_as_text_and_none_is_an_empty_object(
    database: Database,
) -> None:
    before = dt.datetime.now(dt.UTC)
    async with database.session() as session:
        record_action(
            session,
            action="replay",
            target="dead-letters",
            actor="on-call",
            details={"tasks": ["AAA/ingest"], "as_of": dt.date(2026, 11, 20), "force": False},
        )
        record_action(session, action="start", target="run-2", actor=SCHEDULER)
        await session.commit()
    after = dt.datetime.now(dt.UTC)

    replay, start = await _entries(database)
    assert replay.details == '{"as_of": "2026-11-20", "force": false, "tasks": ["AAA/ingest"]}'
    assert json.loads(start.details) == {}
    assert start.reason == ""
    assert start.actor == "scheduler"
    for entry in (replay, start):
        assert entry.at.utcoffset() == dt.timedelta(0)
        assert before <= entry.at <= after
