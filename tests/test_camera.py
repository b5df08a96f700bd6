"""The camera pipeline (burst/camera.py) and ``burstsr synth --degradation camera``."""

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from burstsr.burst.camera import (
    CameraParams,
    CameraRanges,
    add_sensor_noise,
    demosaic,
    draw_camera_params,
    jpeg,
    linear_to_srgb,
    mosaic,
    motion_transform,
    srgb_to_linear,
)
from burstsr.burst.synth import corner_error, simulate_camera_burst
from burstsr.cli import cli
from burstsr.io import read_image

from conftest import texture, write_frames


def test_srgb_round_trip():
    x = np.linspace(0, 1, 101, dtype=np.float32)
    assert np.abs(linear_to_srgb(srgb_to_linear(x)) - x).max() < 1e-5
    assert srgb_to_linear(np.float32(0.5)) == pytest.approx(0.2140, abs=1e-4)


def test_mosaic_then_demosaic_keeps_colours():
    img = np.zeros((32, 32, 3), np.float32)
    img[..., 0], img[..., 1], img[..., 2] = 0.8, 0.3, 0.1
    cfa = mosaic(img)
    assert cfa[0, 0] == pytest.approx(0.8) and cfa[1, 1] == pytest.approx(0.1)
    assert cfa[0, 1] == pytest.approx(0.3) and cfa[1, 0] == pytest.approx(0.3)
    back = demosaic(cfa)
    assert np.abs(back[4:-4, 4:-4] - img[4:-4, 4:-4]).max() < 2e-3  # R, G, B in their places
    smooth = texture(64, 64, seed=1, fine=0.0)
    assert np.abs(demosaic(mosaic(smooth)) - smooth)[4:-4, 4:-4].mean() < 0.01


def test_sensor_noise_is_signal_dependent():
    rng = np.random.default_rng(0)
    for level in (0.1, 0.6):
        flat = np.full((200, 200), level, np.float32)
        noisy = add_sensor_noise(flat, shot=0.01, read=1e-4, rng=rng)
        assert noisy.var() == pytest.approx(1e-4 + 0.01 * level, rel=0.1)


def test_jpeg_quality_matters():
    img = texture(64, 64, seed=2)
    err = {q: np.abs(jpeg(img, q) - img).mean() for q in (30, 95)}
    assert err[95] < err[30] < 0.1


def test_drawn_camera_stays_in_its_ranges():
    rng = np.random.default_rng(3)
    ranges = CameraRanges(frames=(3, 5), jpeg=(70, 80), still_share=(1.0, 1.0))
    for _ in range(20):
        p = draw_camera_params(rng, ranges)
        assert 3 <= p.frames <= 5 and len(p.motions) == p.frames
        assert 70 <= p.jpeg <= 80 and ranges.blur[0] <= p.blur <= ranges.blur[1]
        assert ranges.shot[0] <= p.shot <= ranges.shot[1] and p.read > 0
        # every frame "almost still": it moves by at most still_shift
        assert all(abs(m["shift_x"]) <= ranges.still_shift for m in p.motions)
    zoom = motion_transform({"shift_x": 1, "shift_y": 0, "turn": 0, "zoom": 0.02}, (101, 201))
    centre = zoom @ np.array([100, 50, 1.0])
    corner = zoom @ np.array([0, 0, 1.0])
    assert centre[:2] == pytest.approx([101, 50]) and corner[0] == pytest.approx(-1.0)


def test_camera_burst_is_reproducible_and_its_motion_is_known():
    hr = texture(128, 160, seed=4)
    a = simulate_camera_burst(hr, scale=4, seed=7, ranges=CameraRanges(frames=(4, 4)))
    b = simulate_camera_burst(hr, scale=4, seed=7, ranges=CameraRanges(frames=(4, 4)))
    assert len(a.frames) == 4 and a.frames[0].shape == (32, 40, 3) and a.raws[0].shape == (32, 40)
    assert all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames, strict=True))
    assert np.allclose(a.transforms[0], np.eye(3))
    for motion, t in zip(a.camera.motions, a.transforms, strict=True):
        assert corner_error(motion_transform(motion, (32, 40)), t, (32, 40)) < 1e-9
    # the frame is the clean camera image plus noise and JPEG, not something else
    assert np.abs(a.frames[0] - a.clean).mean() < 0.06


def test_full_colour_camera_is_the_simulators_camera_without_the_mosaic():
    rng = np.random.default_rng(0)
    scene = cv2.GaussianBlur(rng.random((48, 48, 3)).astype(np.float32), (0, 0), 1.5)
    grey = np.repeat(scene[:, :, :1], 3, axis=2)  # JPEG's chroma subsampling keeps it
    hr = cv2.resize(grey, (192, 192), interpolation=cv2.INTER_CUBIC)
    still = {"shift_x": 0.0, "shift_y": 0.0, "turn": 0.0, "zoom": 0.0}
    moved = {"shift_x": 1.3, "shift_y": -0.6, "turn": 0.5, "zoom": 0.004}
    camera = CameraParams(
        frames=2, blur=0.4, shot=1e-12, read=1e-12, jpeg=100, motions=[still, moved]
    )
    frames = simulate_camera_burst(hr, scale=4, params=camera, seed=0, bayer=False).frames
    bayer = simulate_camera_burst(hr, scale=4, params=camera, seed=0)
    assert [f.shape for f in frames] == [(48, 48, 3), (48, 48, 3)]
    inner = np.s_[4:-4, 4:-4]
    # frame 0 is the clean reference through the optics; frame 1 moved as the simulator moves it
    assert np.abs(frames[0] - bayer.clean)[inner].mean() < 0.004
    assert np.abs(frames[1] - bayer.frames[1])[inner].mean() < 0.01
    assert np.abs(frames[1] - frames[0])[inner].mean() > 0.02


def test_synth_camera_writes_drawn_parameters(tmp_path):
    write_frames(tmp_path / "hr", [texture(128, 160, seed=5), texture(128, 128, seed=6)])
    out = tmp_path / "pairs"
    args = ["-q", "synth", str(tmp_path / "hr"), "--out", str(out), "--degradation", "camera"]
    res = CliRunner().invoke(cli, [*args, "--frames", "3-5", "--merge-scale", "2"])
    assert res.exit_code == 0, res.output
    for scene in sorted(out.iterdir()):
        meta = json.loads((scene / "meta.json").read_text())
        assert meta["degradation"] == "camera" and meta["merge_kernel"] == "adaptive"
        assert 3 <= meta["frames"] <= 5 == meta["camera_ranges"]["frames"][1]
        assert len(list((scene / "frames").iterdir())) == meta["frames"]
        assert {"blur", "shot", "read", "jpeg", "motions"} <= set(meta["camera"])
        assert read_image(scene / "result.png").shape == (
            64,
            read_image(scene / "HR.png").shape[1] // 2,
        )


def test_synth_raw_writes_dng_frames_merged_in_linear_light(tmp_path):
    write_frames(tmp_path / "hr", [texture(128, 128, seed=7)])
    out = tmp_path / "pairs"
    res = CliRunner().invoke(
        cli,
        ["-q", "synth", str(tmp_path / "hr"), "--out", str(out), "--degradation", "camera",
         "--raw", "--frames", "3"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    scene = next(out.iterdir())
    frames = sorted((scene / "frames").iterdir())
    assert [f.suffix for f in frames] == [".dng"] * 3
    merged, hr = read_image(scene / "result.png").pixels, read_image(scene / "HR.png").pixels
    small = hr.reshape(32, 4, 32, 4, 3).mean(axis=(1, 3))
    assert np.abs(merged.mean(axis=(0, 1)) - small.mean(axis=(0, 1))).max() < 0.05  # colours


def test_synth_raw_pairs_merged_in_the_bayer_domain(tmp_path):
    write_frames(tmp_path / "hr", [texture(128, 128, seed=7)])
    out = tmp_path / "pairs"
    args = ["-q", "synth", str(tmp_path / "hr"), "--out", str(out), "--degradation", "camera",
            "--raw", "--frames", "4", "--raw-path", "bayer", "--merge-scale", "2"]  # fmt: skip
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    scene = next(out.iterdir())
    meta = json.loads((scene / "meta.json").read_text())
    assert meta["raw_path"] == "bayer" and meta["merge_scale"] == 2
    merged, hr = read_image(scene / "result.png").pixels, read_image(scene / "HR.png").pixels
    assert merged.shape == (64, 64, 3) and (scene / "confidence.png").is_file()
    small = hr.reshape(64, 2, 64, 2, 3).mean(axis=(1, 3))
    assert np.abs(merged.mean(axis=(0, 1)) - small.mean(axis=(0, 1))).max() < 0.05  # colours


@pytest.mark.parametrize(
    "extra",
    [
        ["--raw"],
        ["--degradation", "camera", "--frames", "5-3"],
        ["--frames", "1"],
        ["--degradation", "camera", "--raw-path", "bayer"],
    ],
)
def test_synth_rejects_bad_options(tmp_path, extra):
    write_frames(tmp_path / "hr", [texture(128, 128, seed=8)])
    out = tmp_path / "pairs"
    res = CliRunner().invoke(cli, ["synth", str(tmp_path / "hr"), "--out", str(out), *extra])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and not out.exists()
