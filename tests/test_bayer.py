"""RAW bursts merged in the Bayer domain: the mosaic as the sensor measured it, every frame's
samples placed at their own positions, colour applied once at the end."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from burstsr.burst.bayer import merge_bayer, smooth_chroma
from burstsr.burst.camera import linear_to_srgb, srgb_to_linear
from burstsr.burst.pipeline import merge_burst
from burstsr.burst.synth import corner_error
from burstsr.errors import InputError
from burstsr.io import read_image, write_image
from burstsr.io.bayer import read_bayer
from burstsr.io.dng import CFA_LAYOUTS, write_dng
from burstsr.metrics import psnr

from conftest import texture

NEUTRAL = (0.5, 1.0, 0.8)  # as-shot neutral: white-balance gains 2, 1, 1.25


def sample(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """Camera RGB ``(H, W, 3)`` seen through a 2x2 colour-filter ``pattern`` -> ``(H, W)``."""
    out = np.empty(rgb.shape[:2], rgb.dtype)
    for k, colour in enumerate(pattern):
        dy, dx = divmod(k, 2)
        out[dy::2, dx::2] = rgb[dy::2, dx::2, "RGB".index(colour)]
    return out


def shifted(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``image`` seen by a camera moved so that reference point (x, y) lands on (x+dx, y+dy)."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(
        image, m, image.shape[1::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
    )


def write_burst(
    folder: Path,
    scene: np.ndarray,
    shifts,
    *,
    pattern="RGGB",
    black=512,
    white=16383,
    noise=0.0,
    seed=0,
) -> list[Path]:
    """DNG frames of a linear sRGB ``scene`` moved by ``shifts``; the camera records white
    as ``NEUTRAL``, so a converter must apply gains 2, 1, 1.25 to get the scene back."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (dx, dy) in enumerate(shifts):
        camera = shifted(scene, dx, dy) * np.float32(NEUTRAL)
        cfa = sample(camera, pattern) + rng.normal(0, noise, camera.shape[:2])
        counts = np.round(black + np.clip(cfa, 0, 1) * (white - black)).astype(np.uint16)
        paths.append(
            write_dng(
                folder / f"f{i}.dng",
                counts,
                black=black,
                white=white,
                pattern=pattern,
                neutral=NEUTRAL,
            )
        )
    return paths


@pytest.mark.parametrize("pattern", CFA_LAYOUTS)
@pytest.mark.parametrize(("black", "white"), [(256, 4095), (512, 16383)])  # 12 and 14 bit
def test_the_mosaic_comes_back_with_its_layout_levels_and_white_balance(
    tmp_path, pattern, black, white
):
    rgb = np.random.default_rng(1).random((48, 64, 3)).astype(np.float32) * 0.9
    cfa = sample(rgb, pattern)
    counts = np.round(black + cfa * (white - black)).astype(np.uint16)
    path = write_dng(
        tmp_path / "f.dng", counts, black=black, white=white, pattern=pattern, neutral=NEUTRAL
    )
    frame = read_bayer(path)
    assert frame.pattern.tolist() == [
        ["RGB".index(c) for c in pattern[:2]],
        ["RGB".index(c) for c in pattern[2:]],
    ]
    assert np.abs(frame.cfa - cfa).max() <= 0.51 / (white - black)
    assert np.allclose(frame.gains, [2.0, 1.0, 1.25], atol=1e-3)
    assert np.allclose(frame.rgb_cam, np.eye(3), atol=1e-3)  # the DNG's camera is linear sRGB


@pytest.mark.parametrize("pattern", ["RGGB", "GBRG"])
def test_colours_come_out_right(tmp_path, pattern):
    colour = np.float32([0.45, 0.3, 0.15])  # linear sRGB, modulated by a gray texture
    scene = colour * (0.5 + 0.8 * texture(96, 128, seed=3, fine=0.8).mean(axis=2, keepdims=True))
    paths = write_burst(
        tmp_path / "b",
        scene,
        [(0, 0), (0.5, 0.25), (1.3, -0.7), (-0.6, 1.1)],
        pattern=pattern,
        black=256,
        white=4095,
    )
    merged = merge_bayer(paths)
    assert merged.used == 4 and merged.bit_depth == 16
    linear = srgb_to_linear(merged.image)
    inner = (slice(8, -8), slice(8, -8))
    means = linear[inner].mean(axis=(0, 1))
    assert np.allclose(means, scene[inner].mean(axis=(0, 1)), atol=0.005), means
    assert np.abs(linear[inner] - scene[inner]).mean() < 0.01


def test_geometry_motion_and_detail_from_several_frames(tmp_path):
    scene = 0.05 + 0.8 * texture(96, 128, seed=7, fine=0.8)
    shifts = [(0, 0), (0.5, 0.0), (0.0, 0.5), (0.5, 0.5), (1.25, -0.75), (-0.75, 1.25)]
    paths = write_burst(tmp_path / "b", scene, shifts, noise=0.01)
    merged = merge_bayer(paths)
    assert merged.used == len(shifts)
    for (dx, dy), frame in zip(shifts, merged.frames, strict=True):
        true = np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]], float)
        found = np.array(frame.transform)
        assert corner_error(found, true, (96, 128)) < 0.25  # an offset bug: >= 0.5
    single = linear_to_srgb(read_image(paths[0]).pixels)  # LibRaw's demosaic of one frame
    demosaiced = merge_burst(paths).image  # every frame demosaiced, then merged
    truth = linear_to_srgb(scene)
    burst_psnr = psnr(merged.image, truth, border=8)
    assert burst_psnr > psnr(single, truth, border=8) + 2.0
    assert burst_psnr > psnr(demosaiced, truth, border=8)  # the samples, not interpolations
    assert burst_psnr > 30.0
    x2 = merge_bayer(paths, scale=2)
    assert x2.image.shape == (192, 256, 3)


def test_chroma_smoothing_keeps_the_luma_and_takes_false_colour_off_a_gray_scene(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.uniform(0.2, 0.8, (40, 50, 3)).astype(np.float32)
    smooth = smooth_chroma(image, 1.0)
    assert np.allclose(smooth.mean(axis=2), image.mean(axis=2), atol=1e-6)  # the luma is kept
    chroma = lambda x: x - x.mean(axis=2, keepdims=True)  # noqa: E731
    assert np.abs(chroma(smooth)).mean() < 0.5 * np.abs(chroma(image)).mean()
    # A gray zone plate (rings up to the colour filter's resolution): any colour is false.
    y, x = np.mgrid[0:96, 0:128].astype(np.float32)
    gray = 0.4 + 0.3 * np.cos(np.pi * ((x - 64) ** 2 + (y - 48) ** 2) / 300)
    scene = np.repeat(gray[:, :, None], 3, axis=2).astype(np.float32)
    paths = write_burst(tmp_path / "b", scene, [(0, 0), (0.5, 0.25), (1.3, -0.7)], noise=0.01)

    def false_colour(image: np.ndarray) -> float:  # colour that varies (a cast aside)
        c = chroma(srgb_to_linear(image))[8:-8, 8:-8]
        return float(np.abs(c - c.mean(axis=(0, 1))).mean())

    plain = merge_bayer(paths, chroma_sigma=0.0).image
    smoothed = merge_bayer(paths).image  # the default smooths the chroma
    assert false_colour(smoothed) < 0.9 * false_colour(plain)  # 0.8 here; 1 without
    assert psnr(smoothed, linear_to_srgb(scene), border=8) > psnr(
        plain, linear_to_srgb(scene), border=8
    )


def test_adaptive_kernels_restore_an_edge_better_than_round_ones(tmp_path):
    """The splat's kernels follow the structure (narrow across the edge, long along it), so
    a noisy burst of a straight edge comes out closer to the truth near the edge, and no worse
    anywhere, than with the isotropic kernel."""
    x = np.arange(128, dtype=np.float32)
    gray = np.where(x < 64, 0.25, 0.6)[None, :].repeat(96, axis=0)  # flat halves, one edge
    scene = np.repeat(gray[:, :, None], 3, axis=2).astype(np.float32)
    shifts = [(0, 0), (0.5, 0.25), (1.3, -0.7), (-0.6, 1.1), (0.25, 0.75)]
    paths = write_burst(tmp_path / "b", scene, shifts, noise=0.03, seed=2)
    adaptive = srgb_to_linear(merge_bayer(paths).image)
    isotropic = srgb_to_linear(merge_bayer(paths, kernels=None).image)

    def rmse(img: np.ndarray, cols: slice) -> float:
        return float(np.sqrt(((img - scene)[12:-12, cols] ** 2).mean()))

    edge = slice(60, 68)
    assert rmse(adaptive, edge) < 0.97 * rmse(isotropic, edge)  # 0.94 here
    assert rmse(adaptive, slice(12, -12)) < rmse(isotropic, slice(12, -12))


def test_something_that_moved_in_one_frame_leaves_no_ghost(tmp_path):
    scene = 0.05 + 0.6 * texture(96, 128, seed=7, fine=0.8)
    shifts = [(0, 0), (0.5, 0.25), (1.25, -0.5), (-0.5, 0.75), (0.25, 1.0)]
    paths = write_burst(tmp_path / "b", scene, shifts, noise=0.005)
    # Frame 2 again, with a bright card where the others see the scene.
    moved = shifted(scene, *shifts[2])
    moved[30:60, 40:80] = 0.95
    camera = moved * np.float32(NEUTRAL)
    counts = np.round(512 + np.clip(sample(camera, "RGGB"), 0, 1) * (16383 - 512))
    write_dng(paths[2], counts.astype(np.uint16), neutral=NEUTRAL)
    merged = srgb_to_linear(merge_bayer(paths).image)
    card = (slice(34, 56), slice(44, 76))  # inside the card, away from its edges
    assert np.abs(merged[card].mean() - scene[card].mean()) < 0.01, merged[card].mean()


def test_bad_input_is_named(tmp_path):
    write_image(tmp_path / "a.png", texture(32, 32))
    with pytest.raises(InputError, match="a.png"):
        merge_bayer([tmp_path / "a.png", tmp_path / "a.png"])
    paths = write_burst(tmp_path / "b", texture(32, 48), [(0, 0)])
    small = write_burst(tmp_path / "c", texture(32, 40), [(0, 0)])
    with pytest.raises(InputError, match="differs"):
        merge_bayer([paths[0], small[0]])
    with pytest.raises(InputError, match="scale"):
        merge_bayer(paths, scale=5)


def test_merge_cli_takes_the_bayer_path_and_refuses_what_it_cannot_do(tmp_path):
    from click.testing import CliRunner

    from burstsr.cli import cli

    scene = 0.05 + 0.8 * texture(96, 128, seed=7, fine=0.8)
    write_burst(tmp_path / "raw", scene, [(0, 0), (0.5, 0.25), (1.25, -0.5)], noise=0.01)
    out = tmp_path / "out.png"
    res = CliRunner().invoke(
        cli, ["-q", "merge", str(tmp_path / "raw"), "--raw-path", "bayer", "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    written = read_image(out)
    assert written.bit_depth == 16 and written.shape == (96, 128)
    assert psnr(written.pixels, linear_to_srgb(scene), border=8) > 30
    pngs = tmp_path / "png"
    pngs.mkdir()
    for i in range(2):
        write_image(pngs / f"f{i}.png", texture(64, 64, seed=i))
    for folder, extra, name in [
        (pngs, [], "--raw-path"),
        (tmp_path / "raw", ["--crop", "0,0,32,32"], "--crop"),
    ]:
        res = CliRunner().invoke(
            cli,
            [
                "-q",
                "merge",
                str(folder),
                "--raw-path",
                "bayer",
                "-o",
                str(tmp_path / "x.png"),
                *extra,
            ],
        )
        assert res.exit_code == 2 and name in res.output, res.output
        assert "Traceback" not in res.output
        assert not (tmp_path / "x.png").exists()


def test_raw_path_auto_takes_the_bayer_path_for_raw_frames_unless_an_option_needs_demosaic(
    tmp_path,
):
    from click.testing import CliRunner

    from burstsr.cli import cli

    scene = 0.05 + 0.8 * texture(96, 128, seed=7, fine=0.8)
    write_burst(tmp_path / "raw", scene, [(0, 0), (0.5, 0.25), (1.25, -0.5)], noise=0.01)

    def merge(name: str, *extra: str) -> bytes:
        out = tmp_path / name
        res = CliRunner().invoke(
            cli, ["-q", "merge", str(tmp_path / "raw"), "-o", str(out), *extra]
        )
        assert res.exit_code == 0, res.output
        return out.read_bytes()

    assert merge("auto.png") == merge("bayer.png", "--raw-path", "bayer")
    assert merge("auto.png", "--overwrite") != merge("demosaic.png", "--raw-path", "demosaic")
    crop = ("--crop", "8,8,96,64")
    assert merge("auto_crop.png", *crop) == merge(
        "demosaic_crop.png", "--raw-path", "demosaic", *crop
    )


def test_run_takes_the_bayer_path_too(tmp_path):
    from click.testing import CliRunner

    from burstsr.cli import cli

    scene = 0.05 + 0.8 * texture(48, 64, seed=7, fine=0.8)
    write_burst(tmp_path / "raw", scene, [(0, 0), (0.5, 0.25), (1.25, -0.5)], noise=0.01)
    out = tmp_path / "out.png"
    args = ["-q", "run", str(tmp_path / "raw"), "--model", "fidelity", "-o", str(out)]
    res = CliRunner().invoke(cli, [*args, "--raw-path", "bayer"])
    assert res.exit_code == 0, res.output
    assert read_image(out).shape == (192, 256)
    res = CliRunner().invoke(cli, [*args, "--raw-path", "bayer", "--crop", "0,0,32,32"])
    assert res.exit_code == 2 and "--crop" in res.output


def test_the_finish_is_the_same_in_bands_as_in_one_pass(tmp_path):
    """The Bayer merge finishes (blend, colour matrix, chroma smoothing, sRGB) band by band
    with the chroma blur's reach as context: the same image as in one band."""
    import torch

    from burstsr.burst.bayer import _finish, _Splat

    scene = srgb_to_linear(texture(48, 40, seed=3))
    paths = write_burst(tmp_path, scene, [(0, 0), (0.5, 0.25), (1.25, -0.5)], noise=0.002)
    frames = [read_bayer(p) for p in paths]
    splat = _Splat(frames[0].shape, 2, 0.5)
    guide = torch.rand(3 * 96 * 80, generator=torch.Generator().manual_seed(0))
    for frame, (dx, dy) in zip(frames, [(0, 0), (0.5, 0.25), (1.25, -0.5)], strict=True):
        splat.add(frame, np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1.0]]), guide=guide)
    one = _finish(splat, guide, frames[0], full_weight=4.0, chroma_sigma=0.5, rows=1000)
    banded = _finish(splat, guide, frames[0], full_weight=4.0, chroma_sigma=0.5, rows=7)
    assert one.shape == (96, 80, 3) and one.dtype == np.float32
    assert np.abs(banded - one).max() < 1e-6


def test_the_guide_is_the_same_in_bands_as_in_one_pass():
    from burstsr.burst.bayer import _to_camera_planes

    rng = np.random.default_rng(2)
    image = rng.random((37, 23, 3)).astype(np.float32)
    matrix = rng.normal(0, 0.3, (3, 3)).astype(np.float32) + np.eye(3, dtype=np.float32)
    whole = (srgb_to_linear(image) @ matrix).transpose(2, 0, 1).reshape(-1)
    for rows in (5, 37, 512):
        planes = _to_camera_planes(image, matrix, rows=rows).numpy()
        assert np.allclose(planes, whole, atol=1e-6)
