"""Read a PNG screenshot into an array of RGB pixels, with nothing but zlib and numpy: enough of
the format for what Chromium writes (8-bit RGB or RGBA, not interlaced)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {2: 3, 6: 4}  # colour type: RGB, RGBA


def read_png(path: Path) -> npt.NDArray[np.uint8]:
    """The image as an array of shape (height, width, 3)."""
    data = path.read_bytes()
    assert data.startswith(_SIGNATURE), f"{path} is not a PNG"
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, interlace) == (8, 0), "only 8-bit, non-interlaced PNGs are read"
    assert colour in _CHANNELS, "only RGB and RGBA PNGs are read"
    channels = _CHANNELS[colour]
    rows = _unfiltered(zlib.decompress(b"".join(chunks)), width * channels, height, channels)
    return rows.reshape(height, width, channels)[:, :, :3]


def _unfiltered(raw: bytes, stride: int, height: int, bpp: int) -> npt.NDArray[np.uint8]:
    """Undo each row's filter (PNG specification, section 9)."""
    out = np.zeros((height, stride), dtype=np.uint8)
    previous = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], np.frombuffer(raw, np.uint8, stride, start + 1)
        if kind == 0:
            row = line.copy()
        elif kind == 1:  # Sub: a running sum along the row, per channel
            sums = np.cumsum(line.reshape(-1, bpp), axis=0, dtype=np.int64)
            row = (sums.ravel() % 256).astype(np.uint8)
        elif kind == 2:  # Up
            row = line + previous
        else:  # Average and Paeth depend on the byte just decoded: one byte at a time
            row = np.frombuffer(_sequential(kind, bytes(line), bytes(previous), bpp), np.uint8)
        out[y] = row
        previous = out[y]
    return out


def _sequential(kind: int, line: bytes, above: bytes, bpp: int) -> bytearray:
    """A row under the Average (3) or Paeth (4) filter."""
    row = bytearray(line)
    for i in range(len(row)):
        left = row[i - bpp] if i >= bpp else 0
        up = above[i]
        if kind == 3:
            row[i] = (row[i] + ((left + up) >> 1)) & 255
            continue
        corner = above[i - bpp] if i >= bpp else 0
        guess = left + up - corner
        p_left, p_up, p_corner = abs(guess - left), abs(guess - up), abs(guess - corner)
        if p_left <= p_up and p_left <= p_corner:
            best = left
        elif p_up <= p_corner:
            best = up
        else:
            best = corner
        row[i] = (row[i] + best) & 255
    return row
