"""A PNG file written a band of rows at a time, as the refiner finishes them, so that a large
output is never held whole: neither as an array nor as an encoded buffer.

:func:`png_rows` opens it as a context manager; inside, the object takes assignments of
``(rows, columns)`` slices like the array it stands for (``out[y0:y1, x0:x1] = band``). Bands
must come top to bottom, and each band's columns left to right with no gap, as
:func:`burstsr.refiner.enhance.enhance_image` writes them; a band is compressed and written as
soon as its last column arrives. The file appears (atomically, by a rename) only when the
block ends with every row written. :func:`output_file` picks it for a PNG output and an array,
written at the end, for other formats.

Each row uses PNG's "Sub" filter and zlib's run-length strategy at level 1, which packs a
photograph about as tightly and as fast as OpenCV's encoder (within 1 % on a 30 MP output).
"""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from burstsr.errors import OutputError
from burstsr.io.write import atomic_file, write_errors, write_image

SIGNATURE = b"\x89PNG\r\n\x1a\n"
FLUSH_ROWS = 64  # rows filtered and compressed at once
SUB = 1  # PNG filter type: each byte less the same byte of the pixel to its left


def chunk(kind: bytes, body: bytes | memoryview) -> bytes:
    """One PNG chunk: length, type, body and CRC."""
    crc = zlib.crc32(body, zlib.crc32(kind)) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + bytes(body) + struct.pack(">I", crc)


def sub_filtered(rows: np.ndarray, bpp: int) -> np.ndarray:
    """``rows`` ``(n, bytes)`` of raw scanline bytes as PNG "Sub"-filtered scanlines
    ``(n, 1 + bytes)``: the filter type, then each byte less the one ``bpp`` bytes before it
    (modulo 256)."""
    out = np.empty((rows.shape[0], rows.shape[1] + 1), np.uint8)
    out[:, 0] = SUB
    out[:, 1 : 1 + bpp] = rows[:, :bpp]
    np.subtract(rows[:, bpp:], rows[:, :-bpp], out=out[:, 1 + bpp :])
    return out


class PngRows:
    """The PNG being written; see the module's description. ``shape`` and ``dtype`` are those
    of the RGB array it stands for (``(H, W, 3)``, uint8 or uint16); a gray file keeps the
    first channel."""

    def __init__(self, fh: BinaryIO, path: Path, shape: tuple[int, int], depth: int, gray: bool):
        h, w = shape
        self.shape = (h, w, 3)
        self.dtype = np.dtype(np.uint8 if depth == 8 else np.uint16)
        self.path, self.gray = path, gray
        self._fh = fh
        self._bpp = (1 if gray else 3) * (depth // 8)  # bytes per pixel
        self._zip = zlib.compressobj(1, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
        self._band: np.ndarray | None = None  # the band being filled, and its rows and columns
        self._rows = (0, 0)  # (with no band: its end is the first row not yet written)
        self._column = 0
        colour = 0 if gray else 2  # gray, or RGB
        self._write(
            SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0))
        )

    def __setitem__(self, key: tuple[slice, slice], values: np.ndarray) -> None:
        """``out[y0:y1, x0:x1] = values``: the next columns of the current band of rows (or
        the first ones of the next band); cast to the file's integers as numpy assigns."""
        rows, cols = key
        y0, y1, _ = rows.indices(self.shape[0])
        x0, x1, _ = cols.indices(self.shape[1])
        if self._band is None:
            if y0 != self._rows[1] or y1 <= y0:
                raise ValueError(
                    f"rows {y0}:{y1} written out of order (next is row {self._rows[1]})"
                )
            self._band = np.empty((y1 - y0, self.shape[1], 3), self.dtype)
            self._rows, self._column = (y0, y1), 0
        if (y0, y1) != self._rows or x0 != self._column or x1 <= x0:
            raise ValueError(
                f"rows {y0}:{y1}, columns {x0}:{x1} written out of order (the band of rows "
                f"{self._rows[0]}:{self._rows[1]} is filled up to column {self._column})"
            )
        self._band[:, x0:x1] = values
        self._column = x1
        if x1 == self.shape[1]:
            self._flush_band()

    def _flush_band(self) -> None:
        band = self._band[:, :, 0] if self.gray else self._band
        for top in range(0, len(band), FLUSH_ROWS):  # a few rows at a time: small temporaries
            part = band[top : top + FLUSH_ROWS]
            raw = np.ascontiguousarray(part, part.dtype.newbyteorder(">"))  # PNG: big-endian
            scanlines = raw.reshape(len(raw), -1).view(np.uint8)
            self._compress(sub_filtered(scanlines, self._bpp))
        self._band = None

    def _compress(self, data: np.ndarray) -> None:
        packed = self._zip.compress(data)
        if packed:
            self._write(chunk(b"IDAT", packed))

    def _write(self, data: bytes) -> None:
        with write_errors(self.path):
            self._fh.write(data)

    def finish(self) -> None:
        """End the file (every row must have been written)."""
        written = self._rows[0] if self._band is not None else self._rows[1]
        if written != self.shape[0]:
            raise ValueError(f"{self.path}: only {written} of {self.shape[0]} rows were written")
        with write_errors(self.path):
            self._fh.write(chunk(b"IDAT", self._zip.flush()) + chunk(b"IEND", b""))
            self._fh.flush()  # so that closing the file has nothing left to fail on


@contextlib.contextmanager
def png_rows(
    path: str | os.PathLike, shape: tuple[int, int], depth: int, *, gray: bool = False
) -> Iterator[PngRows]:
    """A PNG of ``shape`` ``(height, width)`` and ``depth`` (8 or 16) bits, gray or RGB, to be
    written a band of rows at a time (see the module's description). The file appears at
    ``path`` when the block ends with every row written; if the block raises, nothing is left.

    Raises:
        OutputError: the file cannot be written.
        ValueError: rows written out of order, or missing at the end.
    """
    if depth not in (8, 16):
        raise OutputError(f"{path}: PNG holds 8 or 16-bit samples, not {depth}")
    path = Path(path)
    with atomic_file(path) as fh:
        out = PngRows(fh, path, shape, depth, gray)
        yield out
        out.finish()


@contextlib.contextmanager
def output_file(
    path: str | os.PathLike, shape: tuple[int, int], depth: int, *, gray: bool = False
) -> Iterator[PngRows | np.ndarray]:
    """Where a refiner writes an output of ``shape`` ``(height, width)`` bound for ``path``, in
    the integers of ``depth`` bits: for a PNG, :func:`png_rows` (written as the rows come);
    for other formats an RGB array, encoded and written (atomically) when the block ends.
    Gray outputs keep the first channel."""
    if Path(path).suffix.lower() == ".png":
        with png_rows(path, shape, depth, gray=gray) as out:
            yield out
        return
    out = np.empty((*shape, 3), np.uint8 if depth == 8 else np.uint16)
    yield out
    write_image(path, out[:, :, 0] if gray else out, bit_depth=depth)
