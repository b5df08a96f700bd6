"""benchmarks/bench_real.py: its small frames, clean and through the camera simulator."""

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from bench_real import CAMERA_BLUR, decimate, through_camera  # noqa: E402

from burstsr.burst.camera import linear_to_srgb, optics, srgb_to_linear  # noqa: E402


def _frame(size: int = 128) -> np.ndarray:
    rng = np.random.default_rng(0)
    return cv2.GaussianBlur(rng.random((size, size, 3)).astype(np.float32), (0, 0), 2.0)


def test_camera_frames_are_the_scene_through_the_lens_with_noise():
    frame = _frame()
    small = through_camera(frame, 95, seed=1)
    assert small.shape == (32, 32, 3) and small.dtype == np.float32
    assert 0.0 <= small.min() and small.max() <= 1.0
    # the noise-free camera: lens blur and area downsampling in linear light
    clean = linear_to_srgb(optics(srgb_to_linear(frame), CAMERA_BLUR, 4))
    error = np.abs(small - clean)[2:-2, 2:-2]  # demosaicing's borders left out
    assert error.mean() < 0.03  # noise, mosaic and JPEG, not another picture
    assert error.mean() > 1e-3  # and not the clean frame: the sensor added something
    # softer than the clean small frame (the lens), and the same from the same seed
    sharp = decimate(frame, 0)
    assert np.abs(np.diff(small, axis=1)).mean() < np.abs(np.diff(sharp, axis=1)).mean()
    np.testing.assert_array_equal(small, through_camera(frame, 95, seed=1))
    assert not np.array_equal(small, through_camera(frame, 95, seed=2))
