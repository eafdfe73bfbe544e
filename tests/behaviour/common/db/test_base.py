"""The shared column types: times kept in UTC whatever zone they are given in."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from marketsense.common.db.base import Base, UtcDateTime

_TOKYO = dt.timezone(dt.timedelta(hours=9))
_PG: Dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
_SQLITE: Dialect = sqlite.dialect()


def test_an_aware_time_is_stored_as_the_same_instant_in_utc() -> None:
    column = UtcDateTime()
    given = dt.datetime(2026, 12, 5, 9, 30, tzinfo=_TOKYO)
    stored = column.process_bind_param(given, _PG)
    assert stored is not None
    assert stored == given
    assert stored.utcoffset() == dt.timedelta(0)


def test_sqlite_stores_the_naive_utc_value_and_reads_it_back_aware() -> None:
    column = UtcDateTime()
    given = dt.datetime(2026, 12, 5, 9, 30, tzinfo=_TOKYO)
    stored = column.process_bind_param(given, _SQLITE)
    assert stored == dt.datetime(2026, 12, 5, 0, 30)
    assert column.process_result_value(stored, _SQLITE) == given


def test_a_naive_time_is_taken_to_be_utc_and_none_stays_none() -> None:
    column = UtcDateTime()
    naive = dt.datetime(2026, 12, 5, 0, 30)
    assert column.process_bind_param(naive, _PG) == naive.replace(tzinfo=dt.UTC)
    assert column.process_bind_param(None, _PG) is None


def test_every_table_including_the_registrys_is_on_the_one_base() -> None:
    import marketsense.common.db.models  # noqa: F401 - registers every table

    assert {"model_versions", "evaluation_sets", "version_metrics", "registry_audit"} <= set(
        Base.metadata.tables
    )
