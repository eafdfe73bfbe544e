"""Which drift alerts: a feature that is not quiet, drifted in each of a version's latest runs."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import cast

from marketsense.common.db.engine import Database
from marketsense.common.db.models import DriftMeasurement
from marketsense.common.runtime import Runtime
from marketsense.monitoring.drift_persistence import latest_drift, persistent_drift
from marketsense.monitoring.performance_types import DriftFigure

QUIET = ("ret_1d",)


def figure(feature: str, *, drifted: bool) -> DriftFigure:
    """A feature's figure, drifted or not."""
    return DriftFigure(feature, 0.4 if drifted else 0.05, 1e-6, 50, 5000, drifted)


def run(*drifted: str) -> list[DriftFigure]:
    """One run's figures over three features, the named ones drifted."""
    return [figure(name, drifted=name in drifted) for name in ("ret_1d", "volatility_20d", "gap")]


def test_only_features_drifted_in_every_latest_run_count() -> None:
    latest = [run("volatility_20d", "gap"), run("volatility_20d"), run("volatility_20d", "gap")]

    lasting = persistent_drift(latest, runs=3, quiet=QUIET)

    assert [f.feature for f in lasting] == ["volatility_20d"]
    assert persistent_drift(latest, runs=1, quiet=QUIET) == [
        f for f in latest[0] if f.feature in {"volatility_20d", "gap"}
    ]


def test_quiet_features_and_short_histories_never_count() -> None:
    always = [run("ret_1d", "gap")] * 4

    assert [f.feature for f in persistent_drift(always, runs=3, quiet=QUIET)] == ["gap"]
    assert persistent_drift(always[:2], runs=3, quiet=QUIET) == []
    assert persistent_drift([run()] * 3, runs=3, quiet=QUIET) == []


async def test_the_latest_runs_of_a_version_are_read_newest_first(database: Database) -> None:
    day = dt.date(2026, 11, 2)
    async with database.session() as session, session.begin():
        for offset, drifted in ((0, False), (1, True), (2, True), (3, False)):
            for version in ("1", "2"):
                session.add(
                    DriftMeasurement(
                        run_id=f"run-{offset}-{version}",
                        as_of=day + dt.timedelta(days=offset),
                        model_name="p",
                        model_version=version,
                        feature="gap",
                        statistic=0.4,
                        p_value=1e-6,
                        rows=50,
                        reference_rows=5000,
                        drifted=drifted and version == "1",
                    )
                )
    runtime = cast(Runtime, SimpleNamespace(database=database))

    latest = await latest_drift(runtime, model="p", version="1", runs=3)

    assert [[f.drifted for f in figures] for figures in latest] == [[False], [True], [True]]
    assert len(await latest_drift(runtime, model="p", version="2", runs=10)) == 4
    assert persistent_drift(latest[1:], runs=2, quiet=()) == latest[1]
