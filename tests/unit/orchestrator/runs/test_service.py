"""How a run settles: its final state from its failed share, FAILED when nothing predicted."""

from __future__ import annotations

import pytest

from marketsense.common.states import RunState
from marketsense.orchestrator.runs.service import final_state


@pytest.mark.parametrize(
    ("failed", "total", "expected"),
    [
        (0, 100, RunState.SUCCESS),
        (1, 100, RunState.PARTIAL),
        (2, 100, RunState.FAILED),
        (3, 1000, RunState.PARTIAL),
        (1, 1, RunState.FAILED),
    ],
)
def test_run_final_state_follows_the_failure_threshold(
    failed: int, total: int, expected: RunState
) -> None:
    assert final_state(failed=failed, total=total, threshold=0.01) == expected


@pytest.mark.parametrize("threshold", [0.5, 1.0])
def test_run_with_every_symbol_failed_is_failed_whatever_the_threshold(threshold: float) -> None:
    # PARTIAL means some symbols predicted.
    assert final_state(failed=2, total=2, threshold=threshold) == RunState.FAILED
    assert final_state(failed=1, total=2, threshold=threshold) == RunState.PARTIAL
