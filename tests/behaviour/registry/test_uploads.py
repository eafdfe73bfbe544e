"""Reading a push's multipart body as it streams in: the two parts exactly as sent, limits
enforced as soon as they are passed (before the body is read whole), and a clear reason for any
body that is not the two-part form."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from marketsense.registry.uploads import (
    FORM_OVERHEAD_BYTES,
    MAX_MANIFEST_BYTES,
    UploadInvalid,
    UploadTooLarge,
    read_push_upload,
)

BOUNDARY = "----marketsense-test-boundary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
MANIFEST = b'{"name": "baseline-predictor", "kind": "predictor"}'


def form(*parts: tuple[str, bytes], closed: bool = True) -> bytes:
    """A multipart/form-data body of (field name, bytes) parts."""
    body = b""
    for name, data in parts:
        body += (
            f"--{BOUNDARY}\r\n"
            f'Content-Disposition: form-data; name="{name}"; filename="{name}.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        body += data + b"\r\n"
    return body + (f"--{BOUNDARY}--\r\n".encode() if closed else b"")


class Body:
    """A request body streamed in chunks, counting how much of it was read."""

    def __init__(self, data: bytes, chunk: int = 4096) -> None:
        self.chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
        self.read = 0

    async def stream(self) -> AsyncIterator[bytes]:
        """The chunks, one at a time."""
        for piece in self.chunks:
            self.read += 1
            yield piece


async def _read(
    body: Body,
    *,
    max_bundle_bytes: int = 1 << 20,
    content_type: str | None = CONTENT_TYPE,
    content_length: str | None = None,
    spool_dir: Path | None = None,
) -> tuple[bytes, bytes, int]:
    """The manifest, the bundle and its size as read from `body`."""
    upload = await read_push_upload(
        content_type=content_type,
        content_length=content_length,
        body=body.stream(),
        max_bundle_bytes=max_bundle_bytes,
        spool_dir=spool_dir,
    )
    try:
        return upload.manifest, upload.bundle.read(), upload.bundle_size
    finally:
        upload.close()


@pytest.mark.parametrize("chunk", [1, 7, 65536])
async def test_both_parts_are_read_exactly_however_the_body_is_chunked(chunk: int) -> None:
    # Bytes that look like a boundary or a CRLF inside a part are data, not structure.
    bundle = b"\x1f\x8b" + b"--" + BOUNDARY.encode()[:-1] + b"\r\n\r\n" + bytes(range(256)) * 4
    body = Body(form(("manifest", MANIFEST), ("bundle", bundle)), chunk=chunk)

    manifest, stored, size = await _read(body)

    assert manifest == MANIFEST
    assert stored == bundle
    assert size == len(bundle)


async def test_a_bundle_over_a_megabyte_is_spooled_to_the_folder_given(tmp_path: Path) -> None:
    bundle = bytes(range(256)) * 8192  # 2 MiB
    spool = tmp_path / "not-yet" / "spool"
    body = Body(form(("bundle", bundle), ("manifest", MANIFEST)), chunk=1 << 16)

    manifest, stored, size = await _read(body, max_bundle_bytes=4 << 20, spool_dir=spool)

    assert (manifest, stored, size) == (MANIFEST, bundle, len(bundle))
    assert spool.is_dir()


async def test_a_declared_length_over_the_limits_is_refused_before_reading_anything() -> None:
    limit = 1000
    body = Body(form(("manifest", MANIFEST), ("bundle", b"x")))
    allowed = limit + MAX_MANIFEST_BYTES + FORM_OVERHEAD_BYTES

    with pytest.raises(UploadTooLarge, match=r"limit of 0 MiB.*MARKETSENSE_REGISTRY_MAX_BUNDLE_MB"):
        await _read(body, max_bundle_bytes=limit, content_length=str(allowed + 1))
    assert body.read == 0
    manifest, _, _ = await _read(body, max_bundle_bytes=limit, content_length=str(allowed))
    assert manifest == MANIFEST


async def test_a_streamed_bundle_over_the_limit_is_refused_once_it_passes_it() -> None:
    limit = 64 << 10
    body = Body(form(("manifest", MANIFEST), ("bundle", b"z" * (limit * 16))), chunk=4096)

    with pytest.raises(UploadTooLarge, match="bundle is over the registry's limit"):
        await _read(body, max_bundle_bytes=limit)

    # Refused within a chunk of passing the limit: the rest of the body is never read.
    assert body.read <= limit // 4096 + 2
    assert body.read < len(body.chunks)


async def test_a_manifest_over_a_megabyte_is_refused() -> None:
    body = Body(form(("manifest", b" " * (MAX_MANIFEST_BYTES + 1)), ("bundle", b"x")))

    with pytest.raises(UploadTooLarge, match=f"manifest part is over {MAX_MANIFEST_BYTES} bytes"):
        await _read(body)


@pytest.mark.parametrize(
    ("content_type", "content_length", "message"),
    [
        ("application/json", None, "send the push as multipart/form-data"),
        ("multipart/form-data", None, "send the push as multipart/form-data"),
        (None, None, "send the push as multipart/form-data"),
        (CONTENT_TYPE, "twelve", "Content-Length 'twelve' is not a number"),
    ],
)
async def test_a_body_that_is_not_a_multipart_form_is_refused_saying_what_to_send(
    content_type: str | None, content_length: str | None, message: str
) -> None:
    body = Body(form(("manifest", MANIFEST), ("bundle", b"x")))

    with pytest.raises(UploadInvalid, match=message):
        await _read(body, content_type=content_type, content_length=content_length)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (form(("manifest", MANIFEST), ("weights", b"x")), "unexpected form part 'weights'"),
        (form(("bundle", b"x"), ("bundle", b"y")), "the form part 'bundle' is sent twice"),
        (form(("manifest", MANIFEST)), r"lacks the form part\(s\) \['bundle'\]"),
        (form(), r"lacks the form part\(s\) \['manifest', 'bundle'\]"),
        (form(("manifest", MANIFEST), ("bundle", b"x"), closed=False), "before its closing"),
        (b"this is not multipart at all", "does not parse|before its closing"),
    ],
)
async def test_a_form_without_exactly_the_two_parts_is_refused_naming_the_problem(
    data: bytes, message: str
) -> None:
    with pytest.raises(UploadInvalid, match=message):
        await _read(Body(data))
