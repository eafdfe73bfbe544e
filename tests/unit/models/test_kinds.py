"""Model kinds: what a stored or typed kind may be, and the metric each is judged by."""

from __future__ import annotations

import pytest

from marketsense.models.kinds import KINDS, PRIMARY_METRIC, as_kind


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_reads_back_as_itself(kind: str) -> None:
    assert as_kind(kind) == kind


@pytest.mark.parametrize("value", ["", "Predictor", "SENTIMENT", " predictor", "classifier"])
def test_anything_else_is_refused_naming_it(value: str) -> None:
    with pytest.raises(ValueError, match=f"model kind {value!r} is neither"):
        as_kind(value)


def test_every_kind_has_a_primary_metric() -> None:
    assert set(PRIMARY_METRIC) == set(KINDS)
    assert PRIMARY_METRIC["predictor"] != PRIMARY_METRIC["sentiment"]
