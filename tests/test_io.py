import logging
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageOps

from burstsr.burst.camera import mosaic as bayer_from_rgb
from burstsr.errors import InputError, OutputError
from burstsr.io import check_output, list_frames, load_burst, read_image, write_image
from burstsr.io.dng import write_dng

from conftest import texture


def test_round_trip_8_and_16_bit(tmp_path):
    img = texture(20, 30)
    for depth, tol in ((8, 0.5 / 255), (16, 0.5 / 65535)):
        for ext in (".png", ".tif"):
            path = write_image(tmp_path / f"x{depth}{ext}", img, bit_depth=depth)
            back = read_image(path)
            assert back.bit_depth == depth and not back.gray and not back.linear
            np.testing.assert_allclose(back.pixels, img, atol=tol + 1e-7)


@pytest.mark.parametrize("ext", [".jpg", ".bmp", ".webp"])
def test_other_formats_read_as_rgb(tmp_path, ext):
    img = texture(24, 32)
    back = read_image(write_image(tmp_path / f"x{ext}", img))
    assert back.pixels.shape == (24, 32, 3) and back.pixels.dtype == np.float32
    assert np.abs(back.pixels - img).mean() < 0.05  # lossy formats: close, not exact


def test_gray_and_alpha(tmp_path, caplog):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    back = read_image(tmp_path / "g.png")
    assert back.gray and back.pixels.shape == (3, 4, 3)
    np.testing.assert_allclose(back.pixels[..., 1], gray / 255, atol=1e-6)
    rgba = np.zeros((3, 4, 4), np.uint8)
    rgba[..., 2] = 200  # red in BGR(A)
    rgba[..., 3] = 10
    cv2.imwrite(str(tmp_path / "a.png"), rgba)
    with caplog.at_level(logging.WARNING, logger="burstsr"):
        back = read_image(tmp_path / "a.png")
    assert "alpha" in caplog.text and "a.png" in caplog.text
    np.testing.assert_allclose(back.pixels[0, 0], [200 / 255, 0, 0], atol=1e-6)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(tmp_path, orientation):
    rng = np.random.default_rng(orientation)
    pixels = (rng.random((6, 10, 3)) * 255).astype(np.uint8)
    pil = PILImage.fromarray(pixels)
    exif = pil.getexif()
    exif[0x0112] = orientation
    pil.save(tmp_path / "o.png", exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(PILImage.open(tmp_path / "o.png")))
    back = read_image(tmp_path / "o.png")
    np.testing.assert_allclose(back.pixels, expected / 255, atol=1e-6)


def test_dng_is_decoded_to_linear_16_bit(tmp_path):
    black, white = 512, 16383
    levels = {}
    for v in (0, 1000, 2000, 4000):
        rgb = np.full((32, 48, 3), black + v, np.uint16)
        rgb[..., 0] = black + v // 2  # red at half the level of green and blue
        write_dng(tmp_path / f"f{v}.dng", bayer_from_rgb(rgb), black=black, white=white)
        image = read_image(tmp_path / f"f{v}.dng")
        assert image.linear and image.bit_depth == 16 and image.pixels.shape == (32, 48, 3)
        levels[v] = image.pixels[8:24, 8:40].mean(axis=(0, 1))
    np.testing.assert_allclose(levels[0], 0, atol=1e-4)  # black level subtracted
    for v in (1000, 2000, 4000):  # linear in the sensor value, scaled by the white level
        np.testing.assert_allclose(levels[v][1:], v / (white - black), rtol=0.01)
        np.testing.assert_allclose(levels[v][0], v / 2 / (white - black), rtol=0.01)


def test_listing_is_natural_and_skips_other_files(tmp_path, caplog):
    for name in ("f10.png", "f2.png", "f1.png", "notes.txt", ".hidden.png"):
        (tmp_path / name).write_bytes(b"x")
    with caplog.at_level(logging.INFO, logger="burstsr"):
        names = [p.name for p in list_frames(tmp_path)]
    assert names == ["f1.png", "f2.png", "f10.png"]
    assert "notes.txt" in caplog.text


def test_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        load_burst(tmp_path / "missing")
    with pytest.raises(InputError, match="no image files"):
        load_burst(tmp_path)
    write_image(tmp_path / "one.png", texture(8, 8))
    with pytest.raises(InputError, match="at least 2"):
        load_burst(tmp_path)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(InputError, match="bad.png"):
        read_image(tmp_path / "bad.png")
    good = (tmp_path / "one.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(InputError, match="cut.png"):
        read_image(tmp_path / "cut.png")
    jpg = write_image(tmp_path / "j.jpg", texture(64, 64)).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(jpg[: len(jpg) // 2])
    with pytest.raises(InputError, match="cut.jpg"):
        read_image(tmp_path / "cut.jpg")
    (tmp_path / "bad.dng").write_bytes(b"II*\x00garbage")
    with pytest.raises(InputError, match="bad.dng"):
        read_image(tmp_path / "bad.dng")


def test_write_is_atomic_and_input_is_never_the_output(tmp_path):
    src = write_image(tmp_path / "in.png", texture(8, 8))
    before = src.read_bytes()
    with pytest.raises(OutputError, match="input"):
        check_output(tmp_path / "." / "in.png", inputs=[src], overwrite=True)
    with pytest.raises(OutputError, match="--overwrite"):
        check_output(src)
    with pytest.raises(OutputError, match="16-bit"):
        check_output(tmp_path / "x.jpg", bit_depth=16)
    with pytest.raises(OutputError, match="does not exist"):
        check_output(tmp_path / "nowhere" / "x.png")
    with pytest.raises(OutputError, match="format"):
        check_output(tmp_path / "x.gif")
    # A failing encode leaves neither the target nor a temporary file behind.
    with pytest.raises(OutputError):
        write_image(tmp_path / "out.jpg", texture(8, 8), bit_depth=16)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]
    assert src.read_bytes() == before
    out = write_image(tmp_path / "out.png", texture(8, 8))
    assert oct(out.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_folder(tmp_path: Path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(OutputError, match="not writable"):
        check_output(ro / "x.png")


def test_heic_frames_are_read_and_merged(tmp_path):
    """Phones write HEIC by default: frames are read and merged."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    rng = np.random.default_rng(0)
    scene = cv2.GaussianBlur(rng.random((96, 128, 3)).astype(np.float32), (0, 0), 3)
    scene = (scene - scene.min()) / (scene.max() - scene.min())
    (tmp_path / "b").mkdir()
    for k in range(3):
        noisy = np.clip(scene + rng.normal(0, 0.02, scene.shape), 0, 1)
        PILImage.fromarray((noisy * 255).round().astype(np.uint8)).save(
            tmp_path / "b" / f"IMG_{k}.HEIC", quality=95
        )
    frame = read_image(tmp_path / "b" / "IMG_0.HEIC")
    assert frame.bit_depth == 8 and frame.pixels.shape == (96, 128, 3)
    assert np.abs(frame.pixels - scene).mean() < 0.03  # lossy, but the same picture
    assert [p.name for p in list_frames(tmp_path / "b")] == [f"IMG_{k}.HEIC" for k in range(3)]
    from burstsr.burst.pipeline import merge_burst

    merged = merge_burst(tmp_path / "b")
    assert merged.used == 3
    inner = (slice(8, -8), slice(8, -8))
    assert np.abs(merged.image - scene)[inner].mean() < np.abs(frame.pixels - scene)[inner].mean()
    (tmp_path / "bad.heic").write_bytes(b"ftypheic" + bytes(100))
    with pytest.raises(InputError, match="bad.heic"):
        read_image(tmp_path / "bad.heic")


def test_merges_note_their_grid_in_the_png(tmp_path):
    from burstsr.io import image_grid
    from burstsr.io.write import png_with_text

    write_image(tmp_path / "m.png", texture(16, 24), text={"burstsr:grid": "4"})
    assert image_grid(tmp_path / "m.png") == 4 and read_image(tmp_path / "m.png").grid == 4
    np.testing.assert_allclose(
        read_image(tmp_path / "m.png").pixels, texture(16, 24), atol=0.5 / 255
    )
    write_image(tmp_path / "plain.png", texture(16, 24))
    assert image_grid(tmp_path / "plain.png") is None
    write_image(tmp_path / "m.tif", texture(16, 24), text={"burstsr:grid": "4"})  # not kept
    assert image_grid(tmp_path / "m.tif") is None
    with pytest.raises(OutputError):
        png_with_text(b"GIF89a" + bytes(20), {"a": "b"})


def test_freed_memory_goes_back_to_the_system_on_glibc():
    import ctypes.util
    import sys

    from burstsr.memory import release_free_memory

    glibc = sys.platform.startswith("linux") and "libc.so" in (ctypes.util.find_library("c") or "")
    if not glibc:
        pytest.skip("malloc_trim is glibc's")

    def rss_mb() -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
        return float("nan")

    # Many mid-sized blocks (under the mmap threshold once it has risen) with a few kept ones
    # between them: the heap cannot shrink from its end, only a trim releases the free pages.
    big = np.ones(16 * 2**20, np.uint8)
    del big  # raises glibc's mmap threshold to 16 MB: the blocks below come from the heap
    blocks = [np.ones(8 * 2**20, np.uint8) for _ in range(30)]
    keep = blocks[::10]
    del blocks
    before = rss_mb()
    assert release_free_memory()
    assert rss_mb() < before - 100, (before, rss_mb())
    del keep


def test_unit_float_scales_integers_and_writes_into_out_for_any_type():
    from burstsr.io.image import unit_float

    eight = np.array([[0, 51, 255]], np.uint8)
    sixteen = np.array([[0, 13107, 65535]], np.uint16)
    for samples in (eight, sixteen):
        np.testing.assert_allclose(unit_float(samples), [[0.0, 0.2, 1.0]], rtol=1e-6)
    floats = np.array([[0.0, 0.2, 1.0]], np.float32)
    assert unit_float(floats) is floats  # floats as given, no copy
    for samples in (eight, floats):
        out = np.full((1, 3), -1.0, np.float32)
        assert unit_float(samples, out=out) is out
        np.testing.assert_allclose(out, [[0.0, 0.2, 1.0]], rtol=1e-6)


@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize("gray", [False, True])
def test_png_written_band_by_band_decodes_to_the_pixels(tmp_path, depth, gray):
    from burstsr.io.png_rows import png_rows

    dtype = np.uint8 if depth == 8 else np.uint16
    rng = np.random.default_rng(depth + gray)
    pixels = rng.integers(0, np.iinfo(dtype).max + 1, (150, 77, 3)).astype(dtype)
    path = tmp_path / "out.png"
    with png_rows(path, (150, 77), depth, gray=gray) as out:
        assert out.shape == (150, 77, 3) and out.dtype == dtype
        for y0, y1 in ((0, 70), (70, 71), (71, 150)):  # bands of rows, columns in pieces
            for x0, x1 in ((0, 30), (30, 31), (31, 77)):
                out[y0:y1, x0:x1] = pixels[y0:y1, x0:x1].astype(np.float32)
        assert not path.exists()  # the file appears only when it is whole
    back = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert back.dtype == dtype
    assert np.array_equal(back, pixels[:, :, 0] if gray else pixels[:, :, ::-1])
    assert os.listdir(tmp_path) == ["out.png"]


def test_png_written_band_by_band_refuses_gaps_and_leaves_nothing_on_failure(tmp_path):
    from burstsr.io.png_rows import png_rows

    path = tmp_path / "out.png"
    path.write_bytes(b"old")
    band = np.zeros((10, 20, 3), np.uint8)
    with pytest.raises(ValueError, match="out of order"), png_rows(path, (20, 20), 8) as out:
        out[0:10, 0:10] = band[:, :10]
        out[0:10, 11:20] = band[:, 11:]  # a column skipped
    with pytest.raises(ValueError, match="out of order"), png_rows(path, (20, 20), 8) as out:
        out[10:20, 0:20] = band  # the first rows skipped
    with pytest.raises(ValueError, match="only 10 of 20 rows"), png_rows(path, (20, 20), 8) as out:
        out[0:10, 0:20] = band
    with pytest.raises(KeyboardInterrupt), png_rows(path, (20, 20), 8) as out:
        out[0:10, 0:20] = band
        raise KeyboardInterrupt
    assert path.read_bytes() == b"old"  # untouched, and no temporary file left
    assert os.listdir(tmp_path) == ["out.png"]
