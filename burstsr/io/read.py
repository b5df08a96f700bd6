"""Reading: list the frames of a folder, decode images (8/16-bit, EXIF orientation, alpha
dropped with a warning; HEIC/HEIF through pillow-heif) and RAW files (rawpy, 16-bit *linear*
RGB) to ``float32`` RGB in [0, 1].
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from burstsr.errors import InputError
from burstsr.io.crop import Crop
from burstsr.io.guard import check_pixels, match_pillow_limit, max_pixels
from burstsr.io.heif import HEIF_EXTENSIONS, read_heif, register_heif
from burstsr.io.image import Image, to_unit_float
from burstsr.io.raw import RAW_EXTENSIONS, raw_size, read_raw
from burstsr.io.write import GRID_NOTE

log = logging.getLogger(__name__)

# Decoded by OpenCV, and by Pillow with pillow-heif (HEIF_EXTENSIONS: phones' default format).
IMAGE_EXTENSIONS = (
    frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}) | HEIF_EXTENSIONS
)


def natural_key(path: Path) -> list:
    """Sort key that puts ``frame2`` before ``frame10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def is_frame_file(path: Path) -> bool:
    """Whether burstsr can read ``path`` as a frame (by extension)."""
    ext = path.suffix.lower()
    return ext in IMAGE_EXTENSIONS or ext in RAW_EXTENSIONS


def list_frames(folder: str | os.PathLike) -> list[Path]:
    """The frame files in ``folder``, in natural sort order; other files are skipped (noticed).

    Raises:
        InputError: the folder does not exist, is not a folder, or holds no image file.
    """
    folder = Path(folder)
    if not folder.exists():
        raise InputError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder; give the folder that holds the frames")
    frames = []
    for path in sorted(folder.iterdir(), key=natural_key):
        if path.name.startswith(".") or path.is_dir():
            continue
        if is_frame_file(path):
            frames.append(path)
        else:
            log.info("skipping %s (not an image burstsr reads)", path.name)
    if not frames:
        raise InputError(
            f"{folder}: no image files found (PNG, JPEG, TIFF, BMP, WebP, HEIC or RAW)"
        )
    return frames


@dataclass(frozen=True)
class Burst:
    """A burst on disk: the frame paths in order, and optionally the region of every frame to
    use. Frames are decoded only when read."""

    paths: tuple[Path, ...]
    crop: Crop | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, index: int, *, keep_integers: bool = False) -> Image:
        """Decode frame ``index`` (its :attr:`crop` only, when set); ``keep_integers`` as
        :func:`read_image`'s."""
        image = read_image(self.paths[index], keep_integers=keep_integers)
        if self.crop is None:
            return image
        return replace(image, pixels=self.crop.apply(image.pixels, self.paths[index]))

    def frame_size(self) -> tuple[int, int]:
        """``(height, width)`` of the frames as read (the first frame's header, cropped)."""
        h, w = image_size(self.paths[0])
        if self.crop is None:
            return h, w
        self.crop.check(h, w, self.paths[0])
        return self.crop.height, self.crop.width


def load_burst(
    source: str | os.PathLike | Sequence[str | os.PathLike], *, crop: Crop | None = None
) -> Burst:
    """A :class:`Burst` from a folder (natural sort order) or an explicit list of frame files;
    with ``crop``, every frame is cut to that region when read.

    Raises:
        InputError: missing or empty folder, missing file, or fewer than two frames.
    """
    if isinstance(source, (str, os.PathLike)):
        paths = list_frames(source)
        where = str(source)
    else:
        paths = [Path(p) for p in source]
        for p in paths:
            if not p.is_file():
                raise InputError(f"{p}: no such file")
        where = "the frame list"
    if len(paths) < 2:
        raise InputError(f"{where}: a burst needs at least 2 frames, found {len(paths)}")
    return Burst(tuple(paths), crop)


def read_image(path: str | os.PathLike, *, keep_integers: bool = False) -> Image:
    """Decode one frame file to float32 RGB in [0, 1] (with ``keep_integers``, 8- and 16-bit
    files decoded by OpenCV keep their uint8 / uint16 samples: a quarter or half the memory).

    PNG, JPEG, TIFF, BMP and WebP are decoded by OpenCV (8 or 16 bit, gray, RGB or RGBA; the EXIF
    orientation is applied), HEIC/HEIF by pillow-heif (8 bit). RAW files are decoded by rawpy to
    16-bit linear RGB with the camera's white balance and no automatic brightening.

    Raises:
        InputError: the file is missing, corrupt, truncated or of an unsupported kind.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.suffix.lower() in RAW_EXTENSIONS:
        return read_raw(path)
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file")
    if path.suffix.lower() in HEIF_EXTENSIONS:
        header = _header(path)
        if header.size is None:
            raise InputError(f"{path}: cannot be decoded (corrupt or not a HEIC/HEIF image)")
        return read_heif(path, header.size)
    data = None  # a JPEG's bytes: read to check its end, then decoded
    if path.suffix.lower() in (".jpg", ".jpeg"):
        data = np.fromfile(path, dtype=np.uint8)
        if not _jpeg_complete(data):
            raise InputError(f"{path}: truncated JPEG (no end-of-image marker)")
    header = _header(path)
    if header.size is not None:
        check_pixels(path, *header.size)
    decoded = _decode(path, data)
    if decoded is None:
        raise InputError(f"{path}: cannot be decoded (corrupt or not an image)")
    pixels, gray = _to_rgb(decoded, path)
    if keep_integers and pixels.dtype in (np.uint8, np.uint16):
        bit_depth = 8 if pixels.dtype == np.uint8 else 16
    else:
        bit_depth, pixels = to_unit_float(pixels, path)
    pixels = _apply_orientation(pixels, header.orientation)
    return Image(np.ascontiguousarray(pixels), bit_depth, gray=gray, grid=header.grid)


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(height, width)`` of an image file, from its header when possible (no decode)."""
    path = Path(path)
    if path.suffix.lower() in RAW_EXTENSIONS:
        return raw_size(path)
    header = _header(path)
    if header.size is None:  # a format Pillow does not read: decode it
        return read_image(path).shape
    h, w = header.size
    return (w, h) if header.orientation in (5, 6, 7, 8) else (h, w)


def image_grid(path: str | os.PathLike) -> int | None:
    """The grid a merge burstsr wrote was made on (see :attr:`Image.grid`), from the file's
    header (no decode); None when the file does not say."""
    return _header(Path(path)).grid


def _jpeg_complete(data: np.ndarray) -> bool:
    tail = data[-64:].tobytes().rstrip(b"\x00")
    return tail.endswith(b"\xff\xd9")


def _decode(path: Path, data: np.ndarray | None = None) -> np.ndarray | None:
    """OpenCV's decode of ``path`` as stored (None if it cannot): from its bytes ``data`` when
    they were read already, else from the file, which spares holding its bytes beside the
    pixels (a 24 MP 16-bit PNG's 120 MB); a name that is not ASCII is decoded from the file's
    bytes (OpenCV cannot open every such path itself, on Windows)."""
    if data is None and str(path).isascii():
        return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        data = np.fromfile(path, dtype=np.uint8)
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)


def _to_rgb(decoded: np.ndarray, path: Path) -> tuple[np.ndarray, bool]:
    if decoded.ndim == 2:
        return np.repeat(decoded[:, :, None], 3, axis=2), True
    channels = decoded.shape[2]
    if channels == 1:
        return np.repeat(decoded, 3, axis=2), True
    if channels == 2:  # gray + alpha
        log.warning("%s: alpha channel dropped", path.name)
        return np.repeat(decoded[:, :, :1], 3, axis=2), True
    if channels == 4:
        log.warning("%s: alpha channel dropped", path.name)
        return cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGB), False
    # BGR -> RGB by OpenCV, in place (vectorised, 2-3x faster than numpy's float conversion of
    # a reversed view, and no second array to page in), which that conversion reads in order.
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB, dst=decoded), False


@dataclass(frozen=True)
class _Header:
    size: tuple[int, int] | None  # (height, width) as stored, before orientation
    orientation: int = 1  # EXIF orientation, 1..8
    grid: int | None = None  # the grid note of a burstsr merge


def _header(path: Path) -> _Header:
    """Size, EXIF orientation and burstsr's grid note from the file's header, in one Pillow open
    and without decoding; no size when Pillow cannot read it (OpenCV then decodes, and its own
    limit of 2**30 pixels applies)."""
    import warnings

    from PIL import Image as PILImage

    match_pillow_limit()
    if path.suffix.lower() in HEIF_EXTENSIONS:
        register_heif(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # size warnings (our guard decides), damaged tags
            with PILImage.open(path) as im:
                width, height = im.size
                return _Header((height, width), _orientation(im), _grid_note(im))
    except PILImage.DecompressionBombError:
        raise InputError(f"{path}: larger than the {max_pixels() / 1e6:g} MP limit") from None
    except Exception:  # not a format Pillow knows, or a header it cannot read
        return _Header(None)


def _grid_note(im) -> int | None:
    """The grid note of an open Pillow image (PNG text before the pixels), None if absent."""
    text = im.info.get(GRID_NOTE) if im.format == "PNG" else None
    try:
        grid = int(text) if text is not None else None
    except ValueError:
        return None
    return grid if grid is not None and 1 <= grid <= 16 else None


def _orientation(im) -> int:
    """The EXIF orientation tag of an open Pillow image, 1 when absent or unreadable."""
    from PIL import Image as PILImage

    try:
        if im.format == "PNG":  # getexif() would decode the whole PNG to look past IDAT
            raw = im.info.get("exif")
            exif = PILImage.Exif()
            if raw:
                exif.load(raw)
        else:
            exif = im.getexif()
        value = int(exif.get(0x0112, 1))
    except Exception:  # no EXIF support for this format: nothing to apply
        return 1
    return value if 1 <= value <= 8 else 1


def _apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """Rotate/flip an (H, W, C) array so it displays upright, as EXIF orientation asks."""
    if orientation == 2:
        return img[:, ::-1]
    if orientation == 3:
        return img[::-1, ::-1]
    if orientation == 4:
        return img[::-1]
    if orientation == 5:
        return img.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(img, k=-1)
    if orientation == 7:
        return img.swapaxes(0, 1)[::-1, ::-1]
    if orientation == 8:
        return np.rot90(img, k=1)
    return img
