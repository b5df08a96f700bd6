"""RAW frames: decoded by rawpy (LibRaw) to 16-bit *linear* RGB with the camera's white
balance and no automatic brightening."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from burstsr.errors import InputError
from burstsr.io.guard import check_pixels
from burstsr.io.image import Image

RAW_EXTENSIONS = frozenset(
    {
        ".dng",
        ".cr2",
        ".cr3",
        ".crw",
        ".nef",
        ".nrw",
        ".arw",
        ".srf",
        ".sr2",
        ".raf",
        ".orf",
        ".rw2",
        ".pef",
        ".srw",
        ".raw",
        ".rwl",
        ".3fr",
        ".erf",
        ".kdc",
        ".dcr",
        ".mrw",
        ".iiq",
        ".x3f",
    }
)


def raw_size(path: Path) -> tuple[int, int]:
    """``(height, width)`` of a RAW file as it decodes (LibRaw's sizes and turn), no decode."""
    import rawpy

    try:
        with rawpy.RawPy() as raw:
            raw.open_file(str(path))  # the header only: no unpacking of the sensor data
            sizes = raw.sizes
    except Exception as exc:
        raise InputError(f"{path}: cannot be decoded as RAW ({exc})") from None
    h, w = sizes.iheight, sizes.iwidth
    return (w, h) if sizes.flip in (5, 6) else (h, w)


def open_raw(path: Path):
    """rawpy's handle of ``path`` (a context manager), its size checked against the pixel limit.

    Raises:
        InputError: LibRaw cannot open it, or it is larger than the limit.
    """
    import rawpy

    try:
        raw = rawpy.imread(str(path))
    except Exception as exc:  # rawpy raises several LibRaw error types
        raise InputError(f"{path}: cannot be decoded as RAW ({exc})") from None
    try:
        check_pixels(path, raw.sizes.height, raw.sizes.width)
    except InputError:
        raw.close()
        raise
    return raw


def read_raw(path: Path) -> Image:
    """Decode a RAW file to linear RGB in [0, 1] (16 bit)."""
    with open_raw(path) as raw:
        try:
            # adjust_maximum_thr=0: the file's white level, not the frame's brightest pixel
            # (LibRaw's default rescales a frame whose brightest pixel is over 3/4 of white to
            # reach it, so the exposure of a burst's frames would depend on their content).
            rgb = raw.postprocess(
                gamma=(1, 1),
                no_auto_bright=True,
                output_bps=16,
                use_camera_wb=True,
                adjust_maximum_thr=0.0,
            )
        except Exception as exc:
            raise InputError(f"{path}: cannot be decoded as RAW ({exc})") from None
    pixels = rgb.astype(np.float32) * np.float32(1 / 65535)
    return Image(np.ascontiguousarray(pixels), 16, gray=False, linear=True)
