"""Run one retention pass with the settings of the environment: `python -m
marketsense.common.retention` (the chart's CronJob). Prints the pass's counts as one JSON line;
exits non-zero when the pass stopped on an error, which its audit row records."""

from __future__ import annotations

import asyncio
import json

from marketsense.common.db.engine import Database
from marketsense.common.logs import configure_logging
from marketsense.common.retention.config import RetentionSettings
from marketsense.common.retention.passes import run_pass
from marketsense.common.store import store_from_settings


async def _main() -> None:
    settings = RetentionSettings()
    database = Database(settings.resolved_database_url())
    store = store_from_settings(settings)
    try:
        await store.start()
        result = await run_pass(database, store, settings, dry_run=False)
    finally:
        await store.close()
        await database.dispose()
    counts = result.tally.as_json() | {"pass": result.pass_id, "bytes": result.tally.bytes_freed}
    print(json.dumps(counts, sort_keys=True))


if __name__ == "__main__":
    environment = RetentionSettings()
    configure_logging(
        level=environment.log_level, json_lines=environment.log_json, service="retention"
    )
    asyncio.run(_main())
