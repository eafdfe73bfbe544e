"""A typed, synchronous client of the monitoring API: performance, drift, decay alerts and
challenges."""

from __future__ import annotations

from marketsense.common.api_client import ApiClient
from marketsense.monitoring.challenge_schemas import ChallengePage, ChallengeRead
from marketsense.monitoring.schemas import (
    DecayAlertPage,
    DriftPage,
    PerformanceDayPage,
    PerformanceRead,
)


def _params(**values: str | int | None) -> dict[str, str | int]:
    """Query parameters without the unset ones."""
    return {name: value for name, value in values.items() if value is not None}


class MonitoringClient(ApiClient):
    """Every route of the monitoring API, returning its pydantic models; a context manager."""

    service = "the monitoring service"

    def performance(
        self, *, model: str | None = None, version: str | None = None, window: int | None = None
    ) -> PerformanceRead:
        """A model's figures per window, production version first, then challengers."""
        params = _params(model=model, version=version, window=window)
        return self._call(PerformanceRead, "GET", "/v1/performance", params=params)

    def performance_daily(
        self,
        *,
        model: str | None = None,
        version: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> PerformanceDayPage:
        """A page of a version's daily figures, newest day first."""
        params = _params(model=model, version=version, limit=limit, cursor=cursor)
        return self._call(PerformanceDayPage, "GET", "/v1/performance/daily", params=params)

    def drift(
        self,
        *,
        run_id: str | None = None,
        model: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> DriftPage:
        """A page of drift measurements, newest run first."""
        params = _params(run_id=run_id, model=model, limit=limit, cursor=cursor)
        return self._call(DriftPage, "GET", "/v1/drift", params=params)

    def decay_alerts(
        self, *, model: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> DecayAlertPage:
        """A page of decay alerts, newest first."""
        params = _params(model=model, limit=limit, cursor=cursor)
        return self._call(DecayAlertPage, "GET", "/v1/decay-alerts", params=params)

    def challenges(self, *, model: str | None = None, limit: int = 100) -> ChallengePage:
        """Challenges, newest first."""
        params = _params(model=model, limit=limit)
        return self._call(ChallengePage, "GET", "/v1/challenges", params=params)

    def decide_challenge(self, challenge_id: int, *, approve: bool, reason: str) -> ChallengeRead:
        """An approver's yes (promotion through the registry's gate) or no (archived)."""
        action = "approve" if approve else "reject"
        return self._call(
            ChallengeRead,
            "POST",
            f"/v1/challenges/{challenge_id}/{action}",
            json={"reason": reason},
        )
