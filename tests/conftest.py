"""Shared test helpers: synthetic scenes and bursts written to tmp_path. No external data."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from burstsr.burst.synth import simulate_burst
from burstsr.io import write_image


def texture(h: int, w: int, *, seed: int = 0, fine: float = 0.5) -> np.ndarray:
    """A colourful scene with structure at several scales, float32 (h, w, 3) in [0, 1]."""
    rng = np.random.default_rng(seed)
    coarse = cv2.resize(
        rng.random((h // 16 + 2, w // 16 + 2, 3)).astype(np.float32),
        (w, h),
        interpolation=cv2.INTER_CUBIC,
    )
    mid = cv2.resize(
        rng.random((h // 4 + 2, w // 4 + 2, 3)).astype(np.float32),
        (w, h),
        interpolation=cv2.INTER_CUBIC,
    )
    detail = cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 1.5)
    img = coarse + 0.6 * mid + fine * detail
    img -= img.min()
    return np.clip(img / img.max(), 0, 1).astype(np.float32)


def write_frames(
    folder: Path, frames: list[np.ndarray], *, bit_depth: int = 8, ext: str = ".png"
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, frame in enumerate(frames):
        paths.append(write_image(folder / f"frame_{i:02d}{ext}", frame, bit_depth=bit_depth))
    return paths


@pytest.fixture
def small_burst(tmp_path: Path):
    """An 6-frame 8-bit burst of a 160x224 scene with sub-pixel handheld motion, on disk."""
    burst = simulate_burst(
        texture(160, 224, seed=3), frames=6, scale=1, noise=0.02, shift=2.0, rotate=0.5, seed=1
    )
    folder = tmp_path / "burst"
    write_frames(folder, burst.frames)
    return folder, burst


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)
