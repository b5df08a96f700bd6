"""benchmarks/bench_bound.py: its perfect burst is the camera simulator's optics."""

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from bench_bound import filtered, optics_otf  # noqa: E402

from burstsr.burst.camera import lens_blur, optics  # noqa: E402


def _scene(size: int = 96) -> np.ndarray:
    rng = np.random.default_rng(0)
    return cv2.GaussianBlur(rng.random((size, size, 3)).astype(np.float32), (0, 0), 1.5)


def test_box_sampled_at_pixel_centres_is_area_downsampling():
    image = _scene()
    fy = np.fft.fftfreq(96)[:, None]
    fx = np.fft.fftfreq(96)[None, :]
    # the centred box moved by 1.5 pixels covers pixels 4i .. 4i + 3 at position 4i
    start = optics_otf((96, 96), 0.0, 4) * np.exp(2j * np.pi * 1.5 * (fx + fy))
    dense = filtered(image.astype(np.float64), start)
    np.testing.assert_allclose(dense[::4, ::4], optics(image, 0.0, 4), atol=1e-5)


def test_lens_part_is_the_simulators_gaussian_blur():
    image = _scene()
    dense = filtered(image.astype(np.float64), optics_otf((96, 96), 2.4, 1))
    inner = np.s_[16:-16, 16:-16]  # away from the periodic / reflected borders
    np.testing.assert_allclose(dense[inner], lens_blur(image, 2.4)[inner], atol=2e-3)
