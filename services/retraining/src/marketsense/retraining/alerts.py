"""The retraining worker's alert: a request given up, with its error and where to look."""

from __future__ import annotations

from marketsense.common.alerts import Alert
from marketsense.retraining.store import Claim


def retrain_failed_alert(claim: Claim, *, error: str) -> Alert:
    """The one alert for a request that ended FAILED."""
    return Alert(
        key=f"retrain-failed:{claim.id}",
        severity="warning",
        title=f"Retraining {claim.model_name} failed after {claim.attempts} attempt(s)",
        text=(
            f"Retrain {claim.id} of {claim.model_name} (window {claim.window_start} to "
            f"{claim.window_end}, asked for because: {claim.reason}) is FAILED: {error}\n"
            f"No challenger was registered for it; production keeps serving. Details: "
            f"GET /v1/retrains/{claim.id}"
        ),
    )
