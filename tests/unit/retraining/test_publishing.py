"""A retrain finds the version it pushed before by the retrain id in the manifest's lineage."""

from __future__ import annotations

from marketsense.retraining.publishing import pushed_by


def _version(number: int, training: dict[str, str] | None) -> dict[str, object]:
    manifest: dict[str, object] = {"name": "m"} if training is None else {"training": training}
    return {"version": number, "manifest": manifest}


def test_the_version_naming_the_retrain_is_found_and_others_are_not_taken_for_it() -> None:
    versions = [
        _version(4, {"retrain_id": "other"}),
        _version(3, {"retrain_id": "r-1", "source": "stored runs"}),
        _version(2, None),
    ]
    assert pushed_by(versions, "r-1") == 3
    assert pushed_by(versions, "r-2") is None
    assert pushed_by([], "r-1") is None
