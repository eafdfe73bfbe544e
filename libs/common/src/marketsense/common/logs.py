"""Structured logging with the run and symbol of the work in hand."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
import time
from collections.abc import Iterator

from pythonjsonlogger.json import JsonFormatter

_run_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("run_id", default=None)
_symbol: contextvars.ContextVar[str | None] = contextvars.ContextVar("symbol", default=None)


class _ContextFilter(logging.Filter):
    """Adds the current run_id and symbol to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = _run_id.get()
        record.symbol = _symbol.get()
        return True


class RepeatLimit(logging.Filter):
    """Lets each distinct message of a logger through once per `interval` seconds.

    Kafka's client logs every failed reconnect and fetch, several a second per client while a
    broker is away; the outage itself is reported once by the consumers' dependency watch.
    """

    def __init__(self, name: str, *, interval: float = 60.0):
        super().__init__(name)
        self.interval = interval
        self._last: dict[tuple[str, object], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not super().filter(record):
            return True  # another logger's record: not this filter's to limit
        key = (record.name, record.msg)
        now = time.monotonic()
        if now - self._last.get(key, float("-inf")) < self.interval:
            return False
        self._last[key] = now
        return True


@contextlib.contextmanager
def log_context(*, run_id: str | None, symbol: str | None) -> Iterator[None]:
    """Tag every log line inside the block with a run and a symbol."""
    run_token = _run_id.set(run_id)
    symbol_token = _symbol.set(symbol)
    try:
        yield
    finally:
        _run_id.reset(run_token)
        _symbol.reset(symbol_token)


def configure_logging(*, level: str = "INFO", json_lines: bool = True, service: str = "") -> None:
    """Send logs to stderr, one JSON object per line unless plain text is asked for."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter())
    handler.addFilter(RepeatLimit("aiokafka"))
    if json_lines:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(run_id)s %(symbol)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                static_fields={"service": service} if service else None,
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Kafka's client logs every reconnect attempt at INFO; keep the signal.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
