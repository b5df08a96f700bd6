"""HEIC/HEIF frames (phones' default format), decoded by Pillow with pillow-heif."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from burstsr.errors import InputError
from burstsr.io.guard import check_pixels
from burstsr.io.image import Image, to_unit_float

HEIF_EXTENSIONS = frozenset({".heic", ".heif", ".hif"})


@lru_cache(maxsize=1)
def _heif_opener() -> bool:
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


def register_heif(path: Path) -> None:
    """Teach Pillow HEIC/HEIF (once), or say which package reading ``path`` needs."""
    if not _heif_opener():
        raise InputError(f"{path}: reading HEIC/HEIF needs pillow-heif (pip install pillow-heif)")


def read_heif(path: Path, size: tuple[int, int]) -> Image:
    """Decode a HEIC/HEIF file of ``size`` (from its header, checked against the pixel limit)
    with Pillow + pillow-heif: 8 bit, upright (libheif applies the file's rotation and
    mirroring, which the HEIF format makes authoritative over EXIF)."""
    import warnings

    from PIL import Image as PILImage

    check_pixels(path, *size)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with PILImage.open(path) as im:
                gray = im.mode in ("L", "LA", "I;16", "I")
                decoded = np.asarray(im.convert("L" if gray else "RGB"))
    except Exception as exc:  # libheif errors, truncated streams
        raise InputError(f"{path}: cannot be decoded ({exc})") from None
    if gray:
        decoded = np.repeat(decoded[:, :, None], 3, axis=2)
    bit_depth, pixels = to_unit_float(decoded, path)
    return Image(np.ascontiguousarray(pixels), bit_depth, gray=gray)
