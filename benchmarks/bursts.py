"""The simulated bursts the benchmarks score: image ``k`` of an evaluation set (in sorted order)
gets the plain burst of seed ``PLAIN_SEED + k`` and the camera-realistic one of seed
``CAMERA_SEED + k``, the same in every benchmark."""

from __future__ import annotations

import numpy as np

from burstsr.burst.camera import CameraRanges
from burstsr.burst.synth import simulate_burst, simulate_camera_burst

PLAIN_SEED = 4000
CAMERA_SEED = 5000


def plain_burst(hr: np.ndarray, k: int, frames: int = 8, scale: int = 4):
    """Area downsampling, Gaussian noise sigma 0.02, shifts up to 2 px, turns up to 1 degree."""
    return simulate_burst(
        hr, frames=frames, scale=scale, noise=0.02, shift=2.0, rotate=1.0, seed=PLAIN_SEED + k
    )


def camera_burst(hr: np.ndarray, k: int, frames: int = 8, scale: int = 4, **ranges):
    """The camera pipeline of ``burstsr/burst/camera.py``; ``ranges`` override its draws."""
    ranges = CameraRanges(frames=(frames, frames), **ranges)
    return simulate_camera_burst(hr, scale=scale, ranges=ranges, seed=CAMERA_SEED + k)


def world_burst(world: str, hr: np.ndarray, k: int, frames: int = 8, scale: int = 4):
    """The ``plain`` or ``camera`` burst of image ``k``."""
    return (plain_burst if world == "plain" else camera_burst)(hr, k, frames, scale)
