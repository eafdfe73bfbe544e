"""The model slot a service serves from: empty until a model is put in, replaced whole."""

from __future__ import annotations

from marketsense.models.slot import ModelSlot


def test_a_new_slot_is_empty_and_not_ready() -> None:
    slot = ModelSlot[str]()

    assert slot.current is None
    assert not slot.ready()


def test_a_slot_is_ready_once_a_model_is_in_and_serves_the_latest() -> None:
    slot = ModelSlot[str]()
    slot.current = "version 1"
    assert slot.ready()

    slot.current = "version 2"
    assert slot.current == "version 2"

    slot.current = None
    assert not slot.ready()


def test_a_falsy_model_still_counts_as_loaded() -> None:
    slot = ModelSlot[int]()
    slot.current = 0

    assert slot.ready()
