"""The monitoring service's tables: resolved outcomes, each model version's daily performance,
feature drift per run, the decay alerts it raised, and champion-against-challenger contests."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from marketsense.common.db.base import Base, BigId, UtcDateTime
from marketsense.common.db.base import server_now as _now


class Outcome(Base):
    """What the market did over a prediction's horizon: one row per stored prediction."""

    __tablename__ = "outcomes"
    __table_args__ = (
        UniqueConstraint("prediction_id"),
        Index(None, "model_name", "model_version", "outcome_day"),
        Index(None, "symbol", "as_of"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    prediction_id: Mapped[int] = mapped_column(ForeignKey("predictions.id", ondelete="CASCADE"))
    run_id: Mapped[str] = mapped_column(String(36))
    """Run that made the prediction."""
    symbol: Mapped[str] = mapped_column(String(32))
    as_of: Mapped[dt.date] = mapped_column(Date)
    """Trading day the prediction was made on (after its close)."""
    horizon_days: Mapped[int] = mapped_column(Integer)
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(64))
    prob_up: Mapped[float] = mapped_column(Float)
    """The prediction's score, copied so performance reads one table."""
    outcome_day: Mapped[dt.date] = mapped_column(Date)
    """The session `horizon_days` sessions after `as_of`, whose close ends the horizon."""
    realized_return: Mapped[float] = mapped_column(Float)
    """Close at `outcome_day` over close at `as_of`, minus 1."""
    direction: Mapped[str] = mapped_column(String(8))
    """`up` when the realised return is above 0, else `down`."""
    resolved_by_run: Mapped[str] = mapped_column(String(36), index=True)
    """Run whose stored bars the outcome was read from."""
    created_at: Mapped[dt.datetime] = _now()


class PerformanceDay(Base):
    """One model version's figures for one outcome day: the inputs of every window metric."""

    __tablename__ = "performance_daily"
    __table_args__ = (UniqueConstraint("model_name", "model_version", "day"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(64))
    day: Mapped[dt.date] = mapped_column(Date, index=True)
    """Outcome day: the session whose close realised the day's returns."""
    predictions: Mapped[int] = mapped_column(Integer)
    """Resolved predictions of the day."""
    hits: Mapped[int] = mapped_column(Integer)
    """Of them, those whose predicted direction was the realised one."""
    book_positions: Mapped[int] = mapped_column(Integer)
    """Symbols the strategy's book held (long and short)."""
    book_hits: Mapped[int] = mapped_column(Integer)
    """Of them, those that moved the way the book bet."""
    ic: Mapped[float | None] = mapped_column(Float)
    """Pearson correlation of score and realised return across symbols; None when undefined."""
    rank_ic: Mapped[float | None] = mapped_column(Float)
    """Spearman correlation of score and realised return across symbols; None when undefined."""
    gross_return: Mapped[float] = mapped_column(Float)
    turnover: Mapped[float] = mapped_column(Float)
    strategy_return: Mapped[float] = mapped_column(Float)
    """The book's return after costs."""
    benchmark_return: Mapped[float] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = _now()


class DriftMeasurement(Base):
    """One feature's distribution in one run against the served version's reference."""

    __tablename__ = "drift_measurements"
    __table_args__ = (UniqueConstraint("run_id", "model_name", "model_version", "feature"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(36), index=True)
    as_of: Mapped[dt.date] = mapped_column(Date, index=True)
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(64))
    feature: Mapped[str] = mapped_column(String(64))
    statistic: Mapped[float] = mapped_column(Float)
    p_value: Mapped[float] = mapped_column(Float)
    rows: Mapped[int] = mapped_column(Integer)
    reference_rows: Mapped[int] = mapped_column(Integer)
    drifted: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime] = _now()


class DecayAlert(Base):
    """A decay the policy found: one per model version and detection day."""

    __tablename__ = "decay_alerts"
    __table_args__ = (UniqueConstraint("model_name", "model_version", "day"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(64))
    day: Mapped[dt.date] = mapped_column(Date, index=True)
    """Last outcome day of the window that showed the decay."""
    window_start: Mapped[dt.date] = mapped_column(Date)
    window_end: Mapped[dt.date] = mapped_column(Date)
    observations: Mapped[int] = mapped_column(Integer)
    sharpe: Mapped[float] = mapped_column(Float)
    benchmark_sharpe: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    """How sure the policy is that the true Sharpe is below the threshold, 0 to 1."""
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = _now()


class Challenge(Base):
    """A challenger version shadow-scored against the production version until a decision."""

    __tablename__ = "challenges"
    __table_args__ = (UniqueConstraint("model_name", "challenger_version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(128))
    champion_version: Mapped[str] = mapped_column(String(64))
    """Production version when the challenge opened (or, undecided, now)."""
    challenger_version: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(32), index=True)
    """SHADOWING, AWAITING_APPROVAL, PROMOTED or REJECTED."""
    started_on: Mapped[dt.date | None] = mapped_column(Date)
    """First outcome day on which both versions have resolved predictions."""
    days: Mapped[int] = mapped_column(Integer, default=0)
    """Outcome days on which both versions have resolved predictions (as far as counted)."""
    champion_sharpe: Mapped[float | None] = mapped_column(Float)
    """The champion's annualised Sharpe over the compared days; None until measured."""
    challenger_sharpe: Mapped[float | None] = mapped_column(Float)
    margin: Mapped[float] = mapped_column(Float)
    """Sharpe by which the challenger must beat the champion to win."""
    decided_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(128))
    """`monitoring` for an automatic decision, else the approver's key name."""
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = _now()
