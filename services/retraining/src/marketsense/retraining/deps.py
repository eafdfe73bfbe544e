"""Dependencies of the retraining service's routes, each declared once."""

from __future__ import annotations

from marketsense.common.deps import ReaderKey, SessionDep

__all__ = ["ReaderKey", "SessionDep"]
