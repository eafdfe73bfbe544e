"""What the orchestrator's alerts say: every failed symbol up to a cap, and the command to run."""

from __future__ import annotations

from marketsense.orchestrator.alerts.service import MAX_NAMED, run_ended_alert
from marketsense.orchestrator.runs.schemas import FailedSymbol
from tests.conftest import TEST_AS_OF


def test_run_ended_alert_names_fifty_failed_symbols_and_counts_the_rest() -> None:
    failed = [
        FailedSymbol(symbol=f"S{i:03d}", stage="ingest", attempts=3, last_error=f"error {i}")
        for i in range(MAX_NAMED + 7)
    ]
    alert = run_ended_alert(
        run_id="r1", as_of=TEST_AS_OF, state="FAILED", symbols=100, failed=failed
    )

    assert alert.key == "run-ended:r1"
    assert alert.severity == "critical"
    assert f"{MAX_NAMED + 7} failed symbols" in alert.title
    assert "- S049: ingest failed after 3 attempts: error 49" in alert.text
    assert "S050" not in alert.text
    assert "... and 7 more" in alert.text
    assert 'marketsense run retry r1 --reason "..."' in alert.text
