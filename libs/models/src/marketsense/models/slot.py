"""A slot holding the model a service serves, replaced whole so readers never see half a swap."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class ModelSlot(Generic[T]):
    """Holds the current model; assigning a new one is atomic for readers in one process."""

    def __init__(self) -> None:
        self.current: T | None = None

    def ready(self) -> bool:
        """Whether a model is loaded."""
        return self.current is not None
