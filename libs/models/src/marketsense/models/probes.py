"""Label order verified by behaviour: clear texts of a label must score highest in its column."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

PROBE_LANGUAGE = "en"
"""The probe texts are English; models reading another language skip the probe."""

PROBE_TEXTS: dict[str, tuple[str, ...]] = {
    "positive": (
        "Shares soared after the company reported record profits and raised its outlook.",
        "Revenue jumped 40% and the board approved a larger dividend.",
        "The stock rallied to an all-time high on blowout earnings.",
        "Analysts upgraded the bank after its strong quarterly results.",
        "Profit beat every estimate and margins improved sharply.",
        "The company won a major contract, sending its shares sharply higher.",
    ),
    "negative": (
        "Shares plunged after the company reported a huge loss and cut its outlook.",
        "Revenue collapsed and the firm suspended its dividend.",
        "The stock crashed to a record low after the fraud investigation.",
        "Analysts downgraded the bank after its weak quarterly results.",
        "The company warned of bankruptcy and announced mass layoffs.",
        "Profit missed every estimate and margins fell sharply.",
    ),
    "neutral": (
        "The company will hold its annual general meeting on Thursday.",
        "The board meets next week to discuss the agenda.",
        "The firm moved its headquarters to a new office building.",
        "The quarterly report is scheduled for release in May.",
        "The company appointed a new secretary to the board.",
        "Trading in the shares opens at the usual time tomorrow.",
    ),
}
"""Texts whose label no reasonable financial sentiment model doubts, per label the probe checks."""

REQUIRED_LABELS = ("negative", "positive")
"""Labels whose probe must land in their declared column; every sentiment manifest has both."""


class LabelOrderError(ValueError):
    """Scores contradict the declared label order."""


@dataclass(frozen=True)
class ProbeResult:
    """Where each probed label's texts score highest, and the label order those scores fit."""

    declared: list[str]
    """The manifest's labels."""
    columns: dict[str, int]
    """Per probed label, the output column with the highest mean probability on its texts."""
    mean_probability: dict[str, float]
    """Per probed label, its texts' mean probability in the label's declared column."""
    fitting: list[str]
    """The label order these scores suggest (the declared one when they agree)."""

    @property
    def contradictions(self) -> list[str]:
        """Probed labels (required ones, and neutral when the others agree) out of place."""
        wrong = [label for label in REQUIRED_LABELS if self._misplaced(label)]
        # Neutral texts are the hardest class: only a neutral column that positive or negative
        # texts would also claim, or that the polar labels already disagree on, is contradicted.
        if "neutral" in self.columns and self._misplaced("neutral"):
            polar_column = self.columns["neutral"] in {self.columns[r] for r in REQUIRED_LABELS}
            if wrong or not polar_column:
                wrong.append("neutral")
        return wrong

    def _misplaced(self, label: str) -> bool:
        return self.columns[label] != self.declared.index(label)

    def as_record(self) -> dict[str, Any]:
        """The JSON form kept with the version's checks."""
        return {
            "probed": sorted(self.columns),
            "columns": self.columns,
            "mean_probability": {k: round(v, 6) for k, v in self.mean_probability.items()},
            "fits_declared_order": not self.contradictions,
        }


def probe_texts(labels: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """The probe texts for the labels a manifest declares."""
    return {label: texts for label, texts in PROBE_TEXTS.items() if label in labels}


def read_probe(labels: Sequence[str], probabilities: dict[str, np.ndarray]) -> ProbeResult:
    """Compare where each label's probe texts score highest with where `labels` puts it.

    `probabilities` holds, per probed label, its texts' class probabilities ([texts, labels]).
    """
    declared = list(labels)
    means = {label: rows.mean(axis=0) for label, rows in probabilities.items()}
    columns = {label: int(np.argmax(mean)) for label, mean in means.items()}
    in_place = {label: float(mean[declared.index(label)]) for label, mean in means.items()}
    return ProbeResult(
        declared=declared,
        columns=columns,
        mean_probability=in_place,
        fitting=_fitting_order(declared, columns),
    )


def check_label_order(result: ProbeResult) -> None:
    """Raise LabelOrderError naming `labels` and the order that fits when the scores disagree."""
    wrong = result.contradictions
    if not wrong:
        return
    seen = "; ".join(
        f"clearly {label} texts score highest in column {result.columns[label]} "
        f"({result.declared[result.columns[label]]!r}), not column "
        f"{result.declared.index(label)}"
        for label in wrong
    )
    suggestion = (
        f"the order that fits the scores is {result.fitting}"
        if result.fitting != result.declared
        else "no order of these labels fits the scores"
    )
    raise LabelOrderError(
        f"labels {result.declared} contradict the graph's scores: {seen}; {suggestion}; "
        "fix `labels` in the manifest to the order of the graph's output columns"
    )


def _fitting_order(declared: list[str], columns: dict[str, int]) -> list[str]:
    """Declared labels with each probed label moved to the column its texts favour, if unique."""
    if len(set(columns.values())) != len(columns):
        return declared
    order: list[str | None] = [None] * len(declared)
    for label, column in columns.items():
        order[column] = label
    rest = iter(label for label in declared if label not in columns)
    return [label if label is not None else next(rest) for label in order]
