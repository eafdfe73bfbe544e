"""The API models of champion against challenger."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from marketsense.monitoring.schemas import Figure

_EXAMPLE: dict[str, JsonValue] = {
    "id": 3,
    "model_name": "baseline-predictor",
    "champion_version": "4",
    "challenger_version": "5",
    "state": "PROMOTED",
    "started_on": "2026-06-02",
    "days": 10,
    "champion_sharpe": -1.8,
    "challenger_sharpe": 3.1,
    "margin": 0.5,
    "decided_at": "2026-06-16T21:05:12Z",
    "decided_by": "monitoring",
    "reason": "challenger Sharpe 3.10 beats champion Sharpe -1.80 by the margin 0.50 over 10 "
    "shared outcome days 2026-06-02..2026-06-15",
}


class ChallengeRead(BaseModel):
    """A challenger version measured against production on the outcome days both predicted."""

    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_EXAMPLE]})

    id: int
    model_name: str
    champion_version: str
    """Production version it is measured against."""
    challenger_version: str
    state: Literal["SHADOWING", "AWAITING_APPROVAL", "PROMOTED", "REJECTED"]
    """SHADOWING until enough shared days (or while the registry cannot be called);
    AWAITING_APPROVAL when it won under promotion mode `approval`; then PROMOTED or REJECTED."""
    started_on: dt.date | None
    """First outcome day on which both versions have resolved predictions."""
    days: int
    """Outcome days on which both versions have resolved predictions."""
    champion_sharpe: Figure
    """Annualised Sharpe of production's book over the compared days; null until measured or
    where the returns define none."""
    challenger_sharpe: Figure
    margin: float
    """Sharpe by which the challenger must beat production (setting `challenge_margin`)."""
    decided_at: dt.datetime | None
    decided_by: str | None
    """`monitoring` for an automatic decision, else the approver's key name."""
    reason: str | None
    """The figures behind the decision, or the registry's or approver's reason."""


class ChallengePage(BaseModel):
    """Challenges, newest first."""

    items: list[ChallengeRead]


class ChallengeDecision(BaseModel):
    """An approver's reason for a yes or a no."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "shadow figures reviewed with the desk"}]},
    )

    reason: str = Field(min_length=1, max_length=2000)
    """Why; kept on the challenge and in the registry's audit log."""
