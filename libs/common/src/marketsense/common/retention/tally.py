"""What a retention pass deleted (or a dry run listed): objects and bytes per prefix, rows per
table, and the expired things kept, by reason."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from marketsense.common.retention.policy import prefix_of


@dataclass
class Tally:
    """Running counts of a pass, as its audit row stores them."""

    objects: Counter[str] = field(default_factory=Counter)
    bytes: Counter[str] = field(default_factory=Counter)
    rows: Counter[str] = field(default_factory=Counter)
    kept: Counter[str] = field(default_factory=Counter)

    def add_objects(self, items: Iterable[tuple[str, int]]) -> None:
        """Count deleted objects, given as (key, size)."""
        for key, size in items:
            self.objects[prefix_of(key)] += 1
            self.bytes[prefix_of(key)] += size

    def add_rows(self, table: str, count: int) -> None:
        """Count deleted rows of a table."""
        self.rows[table] += count

    @property
    def bytes_freed(self) -> int:
        """Bytes of every deleted object."""
        return sum(self.bytes.values())

    def as_json(self) -> dict[str, Any]:
        """The counts as the audit row's JSON: prefixes, tables and kept."""
        return {
            "prefixes": {
                prefix: {"objects": self.objects[prefix], "bytes": self.bytes[prefix]}
                for prefix in sorted(self.objects)
            },
            "tables": dict(sorted(self.rows.items())),
            "kept": dict(sorted(self.kept.items())),
        }
