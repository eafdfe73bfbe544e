"""Migrate the configured database to the newest revision: `python -m marketsense.common.db`.

Every service image has it, so the chart's pre-install and pre-upgrade Job runs it from one.
"""

from __future__ import annotations

import asyncio
import sys

from marketsense.common.db.migrate import upgrade_url
from marketsense.common.settings import CommonSettings


def main() -> int:
    """Upgrade MARKETSENSE_DATABASE_URL; 0 when done, 2 when unset, 1 when unreachable."""
    settings = CommonSettings()
    if settings.database_url is None:
        print("error: set MARKETSENSE_DATABASE_URL to the database to migrate", file=sys.stderr)
        return 2
    try:
        revision = asyncio.run(upgrade_url(settings.resolved_database_url()))
    except OSError as exc:
        print(
            f"error: cannot reach the database ({exc}); check MARKETSENSE_DATABASE_URL",
            file=sys.stderr,
        )
        return 1
    print(f"database at revision {revision}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
