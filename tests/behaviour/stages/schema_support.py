"""The predictions key as the models declare it, on a database migrated before it gained `as_of`."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from marketsense.common.db.engine import Database
from marketsense.common.db.models import Prediction

KEY = "uq_predictions_per_model_version"


def _declared_columns() -> list[str]:
    """The columns of the predictions key in the models."""
    table = Prediction.__table__
    assert isinstance(table, sa.Table)
    for constraint in table.constraints:
        if isinstance(constraint, sa.UniqueConstraint) and constraint.name == KEY:
            return [column.name for column in constraint.columns]
    raise LookupError(f"no {KEY} on predictions")


async def widen_prediction_key(database: Database) -> None:
    """Give the predictions table the key the models declare, if the migrations have not yet
    (a no-op once the migration that adds `as_of` to it is in)."""
    wanted = _declared_columns()

    def widen(connection: sa.Connection) -> None:
        for found in sa.inspect(connection).get_unique_constraints("predictions"):
            if found["name"] == KEY and sorted(found["column_names"]) == sorted(wanted):
                return
        operations = Operations(MigrationContext.configure(connection))
        with operations.batch_alter_table("predictions") as batch:
            batch.drop_constraint(KEY, type_="unique")
            batch.create_unique_constraint(KEY, wanted)

    async with database.engine.begin() as connection:
        await connection.run_sync(widen)
