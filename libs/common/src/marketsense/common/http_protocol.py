"""uvicorn's h11 protocol with a header read timeout, which uvicorn lacks: a connection that opens
and sends nothing, or stops half-way through a request's line or headers, is closed once the
timeout passes instead of being held for ever (slowloris)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)


class HeaderTimeoutProtocol(H11Protocol):
    """h11 protocol whose request head must arrive within `header_timeout` seconds.

    The clock starts when the connection opens, or at the first byte of a later request on a
    kept-alive connection (until then uvicorn's keep-alive timeout closes an idle one).
    """

    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the clock for the first request's head."""
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        """Feed the bytes to h11; stop the clock once a head is complete, start it on the
        first bytes of a head that is not."""
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:
            if self._header_deadline is None and not self.transport.is_closing():
                self._arm()
        elif self._header_deadline is not None:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the clock with the connection."""
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._header_deadline = self.loop.call_later(self.header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _expire(self) -> None:
        """Close a connection still waiting for a request's head; one past it is left alone."""
        self._header_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            log.debug("closing a connection whose request head took over %gs", self.header_timeout)
            self.transport.close()


def header_timeout_protocol(header_timeout: float) -> type[HeaderTimeoutProtocol]:
    """The protocol class uvicorn's `http=` option takes, with this header timeout."""

    class Bound(HeaderTimeoutProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, header_timeout=header_timeout, **kwargs)

    return Bound
