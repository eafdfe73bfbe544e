"""A bare FastAPI app with one route answering a constant JSON body, the baseline of api_latency.

It serves the prediction route's path template, so routing costs the same, and nothing else: no
middleware, no dependencies, no database. uvicorn runs it with the options
`marketsense.common.serve.server_options` gives every service.

    python bench/bare_app.py --port 8100 --body-bytes 231 [--response dict|bytes]
"""

from __future__ import annotations

import argparse
import functools
import json
from typing import Any

import uvicorn
from fastapi import FastAPI, Response

from marketsense.common.serve import server_options
from marketsense.common.settings import CommonSettings

ROUTE = "/v1/predictions/{symbol}/latest"
"""The same path template as the prediction service's `GET latest`."""

_SKELETON = {"symbol": "AAPL", "pad": ""}


def constant_body(size: int) -> bytes:
    """A compact JSON object of exactly `size` bytes, padded with a string field."""
    bare = len(json.dumps(_SKELETON, separators=(",", ":")).encode())
    if size < bare:
        raise ValueError(f"a constant body needs at least {bare} bytes, not {size}")
    body = json.dumps({**_SKELETON, "pad": "x" * (size - bare)}, separators=(",", ":")).encode()
    assert len(body) == size
    return body


def build_app(size: int, response: str) -> FastAPI:
    """The bare app: `dict` returns a constant dict as a plain FastAPI route would, `bytes` a
    pre-serialised body."""
    app = FastAPI(title="bare")
    body = constant_body(size)
    document: dict[str, Any] = json.loads(body)

    if response == "bytes":

        @app.get(ROUTE)
        async def latest_bytes(symbol: str) -> Response:
            return Response(body, media_type="application/json")

    else:

        @app.get(ROUTE)
        async def latest_dict(symbol: str) -> dict[str, Any]:
            return document

    return app


def main() -> None:
    """Serve the bare app on loopback until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body-bytes", type=int, required=True)
    parser.add_argument("--response", choices=("dict", "bytes"), default="dict")
    args = parser.parse_args()
    # The same uvicorn options as marketsense.common.serve.serve (its h11 protocol with the
    # header timeout included), so only the app differs.
    uvicorn.run(
        functools.partial(build_app, args.body_bytes, args.response),
        factory=True,
        host="127.0.0.1",
        port=args.port,
        **server_options(CommonSettings()),
    )


if __name__ == "__main__":
    main()
