"""A typed, synchronous client of the orchestrator API: runs and dead letters."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

from marketsense.common.api_client import ApiClient
from marketsense.orchestrator.dead_letters.schemas import DeadLetterPage, ReplayRead
from marketsense.orchestrator.runs.schemas import RunActionRead, RunPage, RunRead


class OrchestratorClient(ApiClient):
    """Every route of the orchestrator API, returning its pydantic models; a context manager."""

    service = "the orchestrator"

    # Runs

    def start_run(self, as_of: dt.date, symbols: list[str]) -> RunRead:
        """Start a run for a trading day (publisher; 409 while the day has a live run)."""
        body = {"as_of": as_of.isoformat(), "universe": symbols}
        return self._call(RunRead, "POST", "/v1/runs", json=body)

    def list_runs(
        self,
        *,
        state: str | None = None,
        as_of: dt.date | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunPage:
        """A page of runs, newest first; pass `next_cursor` back for the next page."""
        params: dict[str, str | int] = {"limit": limit}
        if state is not None:
            params["state"] = state
        if as_of is not None:
            params["as_of"] = as_of.isoformat()
        if cursor is not None:
            params["cursor"] = cursor
        return self._call(RunPage, "GET", "/v1/runs", params=params)

    def get_run(self, run_id: str) -> RunRead:
        """A run's state, task counts per stage, failed symbols and cleaning notes."""
        return self._call(RunRead, "GET", _run_path(run_id))

    def retry_run(self, run_id: str, reason: str) -> RunActionRead:
        """Re-queue a run's failed tasks (publisher)."""
        return self._call(
            RunActionRead, "POST", f"{_run_path(run_id)}/retry", json={"reason": reason}
        )

    def cancel_run(self, run_id: str, reason: str) -> RunActionRead:
        """Cancel a live run and its unfinished tasks (publisher)."""
        return self._call(
            RunActionRead, "POST", f"{_run_path(run_id)}/cancel", json={"reason": reason}
        )

    # Dead letters

    def list_dead_letters(
        self,
        *,
        run_id: str | None = None,
        topic: str | None = None,
        replayed: bool | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> DeadLetterPage:
        """A page of dead letters, newest first."""
        params: dict[str, str | int] = {"limit": limit}
        if run_id is not None:
            params["run_id"] = run_id
        if topic is not None:
            params["topic"] = topic
        if replayed is not None:
            params["replayed"] = str(replayed).lower()
        if cursor is not None:
            params["cursor"] = cursor
        return self._call(DeadLetterPage, "GET", "/v1/dead-letters", params=params)

    def replay_dead_letters(
        self,
        *,
        reason: str,
        ids: list[int] | None = None,
        run_id: str | None = None,
        force: bool = False,
    ) -> ReplayRead:
        """Republish dead letters, chosen by id or by run, to their original topics (publisher)."""
        body: dict[str, object] = {"reason": reason, "force": force}
        if ids is not None:
            body["ids"] = ids
        if run_id is not None:
            body["run_id"] = run_id
        return self._call(ReplayRead, "POST", "/v1/dead-letters/replay", json=body)


def _run_path(run_id: str) -> str:
    return f"/v1/runs/{quote(run_id, safe='')}"
