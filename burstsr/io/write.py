"""Writing: check an output path before any work, encode images (8/16-bit PNG/TIFF, 8-bit
JPEG/BMP/WebP) and write every file atomically - a temporary file in the destination folder,
then ``os.replace`` - so a failed run never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

from burstsr.errors import OutputError
from burstsr.io.image import unit_float

# The PNG note (tEXt key) that records the grid a merge was made on (1: the frames' own).
GRID_NOTE = "burstsr:grid"

# Output formats and the bit depths each can hold.
WRITE_DEPTHS = {
    ".png": (8, 16),
    ".tif": (8, 16),
    ".tiff": (8, 16),
    ".jpg": (8,),
    ".jpeg": (8,),
    ".bmp": (8,),
    ".webp": (8,),
}


def check_output(
    path: str | os.PathLike,
    *,
    inputs: Iterable[str | os.PathLike] = (),
    overwrite: bool = False,
    bit_depth: int | None = None,
    image: bool = True,
) -> Path:
    """Check, before any work starts, that a file can be written to ``path``.

    Args:
        inputs: files the run reads; the output may not be one of them.
        overwrite: whether an existing file may be replaced.
        bit_depth: the depth that will be written, checked against the format.
        image: whether ``path`` is an image (its extension must name a format burstsr writes).

    Raises:
        OutputError: ``path`` is an input, exists without ``overwrite``, has an unsupported
            extension or bit depth, or its folder is missing or not writable.
    """
    path = Path(path)
    if image:
        check_format(path, bit_depth)
    target = path.resolve()
    for p in inputs:
        if Path(p).resolve() == target:
            raise OutputError(f"{path}: is one of the input files; choose another output")
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file name")
    if path.exists() and not overwrite:
        raise OutputError(f"{path}: already exists; pass --overwrite to replace it")
    parent = path.parent
    if not parent.is_dir():
        raise OutputError(f"{path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"{path}: folder {parent} is not writable")
    return path


def check_format(path: str | os.PathLike, bit_depth: int | None = None) -> None:
    """Raise :class:`OutputError` unless ``path``'s extension names a format burstsr writes,
    able to hold ``bit_depth`` samples."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in WRITE_DEPTHS:
        raise OutputError(
            f"{path}: unsupported output format; use one of {', '.join(sorted(WRITE_DEPTHS))}"
        )
    if bit_depth is not None and bit_depth not in WRITE_DEPTHS[ext]:
        raise OutputError(f"{path}: {ext} cannot hold {bit_depth}-bit samples; use .png or .tif")


def check_folder(path: str | os.PathLike, *, what: str = "output folder") -> Path:
    """Check, before any work starts, that ``path`` is a folder or can be made one (its nearest
    existing ancestor is a writable folder). Creates nothing.

    Raises:
        OutputError: ``path`` is a file, or lies under a file or an unwritable folder.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: exists and is not a folder; give a folder as the {what}")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{path}: {existing} is a file, so the {what} cannot be made")
    if not os.access(existing, os.W_OK):
        raise OutputError(f"{path}: {existing} is not writable")
    return path


def make_folder(path: str | os.PathLike, *, what: str = "output folder") -> Path:
    """Create ``path`` (and its parents) if missing, as :func:`check_folder` promises; OS errors
    become an :class:`OutputError` naming the folder."""
    path = check_folder(path, what=what)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create the {what}: {exc.strerror or exc}") from None
    return path


def format_depth(path: str | os.PathLike, depth: int) -> int:
    """``depth``, lowered to what the format of ``path`` holds (8 for JPEG, WebP, BMP)."""
    return min(depth, max(WRITE_DEPTHS.get(Path(path).suffix.lower(), (8,))))


def encode_image(pixels: np.ndarray, ext: str, *, bit_depth: int = 8) -> memoryview:
    """Encode an image (``(H, W, 3)`` RGB or ``(H, W)`` gray: float in [0, 1], or already
    integers of ``bit_depth``'s range, uint8 or uint16) to file bytes (a read-only view)."""
    ext = ext.lower()
    if ext not in WRITE_DEPTHS or bit_depth not in WRITE_DEPTHS[ext]:
        raise OutputError(f"cannot write {bit_depth}-bit {ext or 'files without extension'}")
    scale, dtype = (255.0, np.uint8) if bit_depth == 8 else (65535.0, np.uint16)
    pixels = np.asarray(pixels)
    data = np.empty(pixels.shape, dtype)
    for top in range(0, pixels.shape[0], 256):  # in bands: no full-size float temporaries
        band = pixels[top : top + 256]
        if band.dtype != dtype:
            band = np.clip(unit_float(band).astype(np.float32, copy=False), 0.0, 1.0)
            band = np.rint(band * np.float32(scale))
        data[top : top + 256] = band[:, :, ::-1] if band.ndim == 3 else band  # RGB -> BGR
    ok, buf = cv2.imencode(ext, data)
    if not ok:
        raise OutputError(f"OpenCV could not encode a {bit_depth}-bit {ext} image")
    return buf.reshape(-1).data  # the encoder's own buffer, not a copy of it


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def png_with_text(payload: bytes | memoryview, text: dict[str, str]) -> bytes:
    """PNG file bytes with a ``tEXt`` chunk per ``text`` item, placed right after the header
    (before the pixels, so readers see them without decoding). Keys: 1-79 Latin-1 characters."""
    return b"".join(png_text_parts(payload, text))


def png_text_parts(payload: bytes | memoryview, text: dict[str, str]) -> list[memoryview]:
    """:func:`png_with_text` as the pieces to write one after another (views of ``payload``
    around the new chunks: a large image is not copied to add a note)."""
    payload = memoryview(payload).cast("B")
    if bytes(payload[:8]) != b"\x89PNG\r\n\x1a\n" or bytes(payload[12:16]) != b"IHDR":
        raise OutputError("not a PNG stream: cannot add text to it")
    end_of_header = 8 + 12 + struct.unpack(">I", payload[8:12])[0]
    chunks = b""
    for key, value in text.items():
        body = key.encode("latin-1") + b"\x00" + value.encode("latin-1")
        chunks += struct.pack(">I", len(body)) + b"tEXt" + body
        chunks += struct.pack(">I", zlib.crc32(b"tEXt" + body) & 0xFFFFFFFF)
    return [payload[:end_of_header], memoryview(chunks), payload[end_of_header:]]


def write_image(
    path: str | os.PathLike,
    pixels: np.ndarray,
    *,
    bit_depth: int = 8,
    text: dict[str, str] | None = None,
) -> Path:
    """Write an image atomically (temporary file in the same folder, then ``os.replace``).

    Args:
        path: destination; the extension picks the format (PNG/TIFF hold 8 or 16 bit).
        pixels: ``float32 (H, W, 3)`` RGB or ``(H, W)`` gray in [0, 1] (values outside are
            clipped), or uint8 / uint16 integers of the full range.
        bit_depth: 8 or 16.
        text: key/value notes stored in a PNG (``tEXt`` chunks); other formats do not keep them.

    Raises:
        OutputError: unsupported format or depth, or the file system refused the write.
    """
    path = Path(path)
    payload = encode_image(pixels, path.suffix, bit_depth=bit_depth)
    if text and path.suffix.lower() == ".png":
        return write_bytes(path, *png_text_parts(payload, text))
    return write_bytes(path, payload)


def write_json(path: str | os.PathLike, data: dict) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    return write_bytes(Path(path), (json.dumps(data, indent=2) + "\n").encode())


def write_bytes(path: Path, *payload: bytes | memoryview) -> Path:
    """Write ``payload`` (one or more pieces, in order) to ``path`` atomically: a temporary
    file beside it, then a rename."""
    with atomic_file(path) as fh, write_errors(path):
        for piece in payload:
            fh.write(piece)
        fh.flush()  # so that closing the file has nothing left to fail on
    return path


@contextlib.contextmanager
def write_errors(path: Path) -> Iterator[None]:
    """The file system's refusals (``OSError``) in the block as an :class:`OutputError` naming
    ``path``."""
    try:
        yield
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror})") from None


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A temporary file beside ``path``, open for writing, renamed onto ``path`` when the block
    ends; removed instead when the block raises (or is interrupted), so ``path`` is either the
    whole new file or untouched. The block's own errors pass through unchanged (it should
    flush what it wrote and report its own write errors).

    Raises:
        OutputError: the folder refused the temporary file or the rename.
    """
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as exc:
        raise OutputError(f"{path}: cannot write here ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
    except BaseException:  # the block failed or was interrupted (Ctrl-C): no file left behind
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        with write_errors(path):
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
            os.replace(tmp, path)
    except OutputError:
        Path(tmp).unlink(missing_ok=True)
        raise
