"""Reading a push's multipart body as it streams in, within size limits, without buffering it."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

MANIFEST_PART = "manifest"
BUNDLE_PART = "bundle"
MAX_MANIFEST_BYTES = 1 << 20
"""A manifest is a few kB of JSON; a megabyte leaves room for long lineage notes."""
FORM_OVERHEAD_BYTES = 64 << 10
"""Room for the multipart boundaries and part headers around the two parts."""
_SPOOL_IN_MEMORY = 1 << 20
PUSH_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [MANIFEST_PART, BUNDLE_PART],
                    "properties": {
                        MANIFEST_PART: {
                            "type": "string",
                            "format": "binary",
                            "description": "The manifest JSON (PredictorManifest or "
                            "SentimentManifest); its name and version are replaced.",
                        },
                        BUNDLE_PART: {
                            "type": "string",
                            "format": "binary",
                            "description": "A gzip tar of the artifact's files at the top level: "
                            "predictor: model.onnx; sentiment: model.onnx, tokenizer.json and "
                            "optionally model.int8.onnx.",
                        },
                    },
                }
            }
        },
    }
}
"""The push route's multipart request body, as OpenAPI describes it."""


class UploadTooLarge(Exception):
    """The body or one of its parts is over its limit (HTTP 413)."""


class UploadInvalid(ValueError):
    """The body is not the two-part form a push needs (HTTP 422)."""


@dataclass
class PushUpload:
    """The two parts of a push: the manifest's bytes and the bundle in a temporary file."""

    manifest: bytes
    bundle: IO[bytes]
    bundle_size: int

    def close(self) -> None:
        """Delete the bundle's temporary file."""
        self.bundle.close()


@dataclass
class _Part:
    """The part being read: its form field name, bytes so far and headers."""

    name: str = ""
    size: int = 0
    headers: dict[str, bytes] = field(default_factory=dict)


class _FormReader:
    """Callbacks for the streaming parser: route each part's bytes, counting them."""

    def __init__(self, *, max_bundle_bytes: int, spool_dir: str | None) -> None:
        self.max_bundle_bytes = max_bundle_bytes
        self.manifest = bytearray()
        self.bundle: IO[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - PushUpload owns it
            max_size=_SPOOL_IN_MEMORY, dir=spool_dir
        )
        self.bundle_size = 0
        self.seen: set[str] = set()
        self.pending: list[bytes] = []
        self.finished = False
        self._part = _Part()
        self._header_field = bytearray()
        self._header_value = bytearray()

    def on_part_begin(self) -> None:
        """A new part starts."""
        self._part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        """Some bytes of a part header's name."""
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        """Some bytes of a part header's value."""
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        """One part header is complete."""
        self._part.headers[self._header_field.decode("latin-1").lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        """The part's headers are complete: accept only the two expected parts, once each."""
        _, options = parse_options_header(self._part.headers.get("content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name not in (MANIFEST_PART, BUNDLE_PART):
            raise UploadInvalid(
                f"unexpected form part {name!r}: send the parts "
                f"{MANIFEST_PART!r} (manifest JSON) and {BUNDLE_PART!r} (gzip tar)"
            )
        if name in self.seen:
            raise UploadInvalid(f"the form part {name!r} is sent twice")
        self.seen.add(name)
        self._part.name = name

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        """Some bytes of the part's body: count them against the part's limit."""
        chunk = data[start:end]
        self._part.size += len(chunk)
        if self._part.name == MANIFEST_PART:
            if self._part.size > MAX_MANIFEST_BYTES:
                raise UploadTooLarge(f"the manifest part is over {MAX_MANIFEST_BYTES} bytes")
            self.manifest += chunk
        else:
            if self._part.size > self.max_bundle_bytes:
                raise UploadTooLarge(_bundle_limit_message(self.max_bundle_bytes))
            self.pending.append(chunk)

    def on_part_end(self) -> None:
        """The part is complete."""
        if self._part.name == BUNDLE_PART:
            self.bundle_size = self._part.size

    def on_end(self) -> None:
        """The closing boundary arrived."""
        self.finished = True


async def read_push_upload(
    *,
    content_type: str | None,
    content_length: str | None,
    body: AsyncIterator[bytes],
    max_bundle_bytes: int,
    spool_dir: Path | None = None,
) -> PushUpload:
    """Parse a push's multipart body; raise UploadTooLarge as soon as a limit is passed.

    A bundle over a megabyte is spooled to a file in `spool_dir` (created if missing).
    """
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise UploadInvalid(f"Content-Length {content_length!r} is not a number") from None
        if declared > push_body_limit(max_bundle_bytes):
            raise UploadTooLarge(_bundle_limit_message(max_bundle_bytes))
    kind, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UploadInvalid(
            "send the push as multipart/form-data with the parts "
            f"{MANIFEST_PART!r} and {BUNDLE_PART!r}"
        )
    if spool_dir is not None:
        await asyncio.to_thread(spool_dir.mkdir, parents=True, exist_ok=True)
    reader = _FormReader(
        max_bundle_bytes=max_bundle_bytes, spool_dir=None if spool_dir is None else str(spool_dir)
    )
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": reader.on_part_begin,
            "on_header_field": reader.on_header_field,
            "on_header_value": reader.on_header_value,
            "on_header_end": reader.on_header_end,
            "on_headers_finished": reader.on_headers_finished,
            "on_part_data": reader.on_part_data,
            "on_part_end": reader.on_part_end,
            "on_end": reader.on_end,
        },
    )
    try:
        async for chunk in body:
            parser.write(chunk)
            if reader.pending:
                data = b"".join(reader.pending)
                reader.pending.clear()
                # A spooled file rolls over to disk past a megabyte; keep that I/O off the loop.
                await asyncio.to_thread(reader.bundle.write, data)
        parser.finalize()
        if not reader.finished:
            raise UploadInvalid("the multipart body ends before its closing boundary")
        missing = [p for p in (MANIFEST_PART, BUNDLE_PART) if p not in reader.seen]
        if missing:
            raise UploadInvalid(f"the push lacks the form part(s) {missing}")
    except MultipartParseError as error:
        reader.bundle.close()
        raise UploadInvalid(f"the multipart body does not parse: {error}") from error
    except BaseException:
        reader.bundle.close()
        raise
    reader.bundle.seek(0)
    return PushUpload(
        manifest=bytes(reader.manifest), bundle=reader.bundle, bundle_size=reader.bundle_size
    )


def push_body_limit(max_bundle_bytes: int) -> int:
    """The most bytes a whole push may carry: the bundle, the manifest and the form around them."""
    return max_bundle_bytes + MAX_MANIFEST_BYTES + FORM_OVERHEAD_BYTES


def _bundle_limit_message(max_bundle_bytes: int) -> str:
    """What a 413 says: the limit and the setting that raises it."""
    return (
        f"the bundle is over the registry's limit of {max_bundle_bytes // (1 << 20)} MiB "
        "(MARKETSENSE_REGISTRY_MAX_BUNDLE_MB)"
    )
