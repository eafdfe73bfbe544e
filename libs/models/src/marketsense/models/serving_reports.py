"""Each replica's report of the model it serves, kept in the registry's `model_serving` table."""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import delete

from marketsense.common.db.models import ModelServing
from marketsense.common.runtime import Runtime

log = logging.getLogger(__name__)

_REPLICA_LENGTH = 128
"""Width of `model_serving.replica`."""


@dataclass(frozen=True)
class ServingReport:
    """The model, version and graph one service serves, and where the version came from."""

    service: str
    model: str
    version: str
    variant: str
    """`fp32` or `int8`: the graph that answers requests."""
    source: str
    """`registry` (the production version) or `local` (the configured folder)."""

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready fields."""
        return asdict(self)


def replica_id() -> str:
    """This process's name among replicas: host name and process id."""
    suffix = f":{os.getpid()}"
    return socket.gethostname()[: _REPLICA_LENGTH - len(suffix)] + suffix


class ServingReporter:
    """Writes this replica's reports; a database fault is logged and never stops serving."""

    def __init__(self, runtime: Runtime, *, replica: str | None = None):
        self.runtime = runtime
        self.replica = replica or replica_id()

    async def report(self, report: ServingReport) -> None:
        """Insert or refresh this replica's row for the report's model."""
        try:
            async with self.runtime.database.session() as session:
                row = await session.get(ModelServing, (self.replica, report.model))
                if row is None:
                    row = ModelServing(replica=self.replica, model_name=report.model)
                    session.add(row)
                row.service, row.version = report.service, report.version
                row.variant, row.source = report.variant, report.source
                row.reported_at = dt.datetime.now(dt.UTC)
                await session.commit()
        except Exception:  # the next poll reports again; the registry shows the row as stale
            log.warning(
                "cannot report serving %s version %s to the registry",
                report.model,
                report.version,
                exc_info=True,
            )

    async def withdraw(self, model: str) -> None:
        """Remove this replica's row for `model`, as the process stops serving it."""
        try:
            async with self.runtime.database.session() as session:
                await session.execute(
                    delete(ModelServing).where(
                        ModelServing.replica == self.replica, ModelServing.model_name == model
                    )
                )
                await session.commit()
        except Exception:  # a row left behind turns stale and drops out of the registry's view
            log.warning("cannot withdraw the serving report of %s", model, exc_info=True)
