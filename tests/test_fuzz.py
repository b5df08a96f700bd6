"""The readers against arbitrary, damaged and unusual files: only burstsr's own errors come out,
and a header that claims a huge size is refused before anything is decoded."""

import io
import struct
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

from burstsr.burst.camera import mosaic
from burstsr.errors import InputError
from burstsr.io import read_image
from burstsr.io.dng import write_dng
from burstsr.io.guard import MAX_PIXELS_VARIABLE

from conftest import texture

FORMATS = (".png", ".jpg", ".tif", ".webp", ".bmp", ".dng", ".heic")
FUZZ = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _valid(ext: str, tmp_path: Path) -> bytes:
    """A small valid file of the format, as bytes."""
    img = texture(24, 32, seed=3)
    if ext == ".dng":
        return _dng(tmp_path / "v.dng", 64, 96).read_bytes()
    if ext == ".heic":
        import pillow_heif
        from PIL import Image as PILImage

        pillow_heif.register_heif_opener()
        PILImage.fromarray((img * 255).astype(np.uint8)).save(tmp_path / "v.heic")
        return (tmp_path / "v.heic").read_bytes()
    ok, buf = cv2.imencode(ext, (img * 255).astype(np.uint8))
    assert ok
    return buf.tobytes()


def _dng(path: Path, h: int, w: int) -> Path:
    counts = (512 + texture(h, w, seed=4) * 12000).astype(np.uint16)
    return write_dng(path, mosaic(counts))


def test_the_damaged_files_start_out_valid(tmp_path):
    for ext in FORMATS:
        path = tmp_path / f"v{ext}"
        path.write_bytes(_valid(ext, tmp_path))
        assert read_image(path).pixels.shape[:2] in ((24, 32), (64, 96))


def _read(path: Path) -> None:
    """read_image must either succeed with a sane image or raise InputError."""
    try:
        image = read_image(path)
    except InputError as exc:
        assert str(path.name) in str(exc)
        return
    assert image.pixels.ndim == 3 and image.pixels.shape[2] == 3
    assert image.pixels.dtype == np.float32 and np.isfinite(image.pixels).all()


@FUZZ
@given(data=st.binary(max_size=2048), ext=st.sampled_from(FORMATS))
def test_random_bytes(tmp_path, data, ext):
    path = tmp_path / f"r{ext}"
    path.write_bytes(data)
    _read(path)


@FUZZ
@given(
    ext=st.sampled_from(FORMATS),
    cut=st.floats(0, 1),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 7)), max_size=8),
)
def test_truncated_and_bit_flipped_files(tmp_path, ext, cut, flips):
    data = bytearray(_valid(ext, tmp_path))
    for where, bit in flips:
        data[min(int(where * len(data)), len(data) - 1)] ^= 1 << bit
    data = data[: max(1, int(cut * len(data)))] if cut < 0.98 else data
    path = tmp_path / f"d{ext}"
    path.write_bytes(bytes(data))
    _read(path)


@pytest.mark.parametrize(
    "mode,size",
    [
        ("RGB", (1, 1)),
        ("RGB", (2, 2)),
        ("L", (3, 2)),
        ("I;16", (5, 4)),
        ("P", (6, 5)),
        ("RGBA", (4, 4)),
        ("LA", (4, 3)),
        ("CMYK", (6, 4)),
        ("1", (8, 8)),
    ],
)
@pytest.mark.parametrize("ext", [".png", ".tif", ".jpg", ".webp"])
def test_unusual_modes_and_sizes(tmp_path, mode, size, ext):
    img = PILImage.new(mode, size, color=None)
    rng = np.random.default_rng(0)
    if mode in ("RGB", "L", "RGBA", "CMYK", "P", "LA"):
        bands = len(img.getbands())
        arr = (rng.random((size[1], size[0], bands)) * 255).astype(np.uint8)
        img = PILImage.fromarray(
            arr[..., 0] if bands == 1 else arr, mode=None if bands > 1 else "L"
        )
        img = img.convert(mode)
    path = tmp_path / f"m{ext}"
    try:
        img.save(path)
    except (OSError, KeyError, ValueError):
        pytest.skip(f"Pillow cannot write {mode} as {ext}")
    _read(path)


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (and holds almost no data)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_huge_header_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header(60_000, 60_000))  # 3600 MP claimed
    t0 = time.perf_counter()
    with pytest.raises(InputError, match="bomb.png.*MP limit"):
        read_image(path)
    assert time.perf_counter() - t0 < 1.0


def test_pixel_limit_is_settable(tmp_path, monkeypatch):
    path = tmp_path / "f.png"
    cv2.imwrite(str(path), np.zeros((20, 30, 3), np.uint8))
    monkeypatch.setenv(MAX_PIXELS_VARIABLE, "500")
    with pytest.raises(InputError, match=f"f.png: 30x20.*{MAX_PIXELS_VARIABLE}"):
        read_image(path)
    monkeypatch.setenv(MAX_PIXELS_VARIABLE, "600")
    assert read_image(path).shape == (20, 30)
    monkeypatch.setenv(MAX_PIXELS_VARIABLE, "lots")
    with pytest.raises(InputError, match=MAX_PIXELS_VARIABLE):
        read_image(path)
    # RAW files are checked before they are demosaiced.
    dng = _dng(tmp_path / "f.dng", 64, 96)
    monkeypatch.setenv(MAX_PIXELS_VARIABLE, "500")
    with pytest.raises(InputError, match="f.dng.*limit"):
        read_image(dng)


def test_cmyk_jpeg_reads_as_rgb(tmp_path):
    buf = io.BytesIO()
    PILImage.new("CMYK", (8, 6), (0, 255, 255, 0)).save(buf, format="JPEG")
    (tmp_path / "c.jpg").write_bytes(buf.getvalue())
    image = read_image(tmp_path / "c.jpg")
    assert image.pixels.shape == (6, 8, 3)
    assert image.pixels[..., 0].mean() > 0.8 > image.pixels[..., 1].mean()  # red
