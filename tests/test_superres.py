"""Merging onto a finer grid recovers detail that upscaling a merge cannot."""

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from burstsr.burst.pipeline import MergeConfig, merge_burst
from burstsr.burst.synth import simulate_burst
from burstsr.metrics import psnr

from conftest import texture, write_frames


def detailed_scene(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Structure at every scale down to the pixel: plenty to alias at half resolution."""
    rng = np.random.default_rng(seed)
    fine = cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 0.8)
    return np.clip(0.5 * texture(h, w, seed=seed + 1) + 1.2 * (fine - fine.mean()) + 0.25, 0, 1)


@pytest.mark.parametrize("merge", ["mean", "robust"])
def test_finer_grid_merge_beats_upscaling_the_merge(tmp_path, merge):
    hr = detailed_scene(160, 224)
    burst = simulate_burst(hr, frames=16, scale=2, noise=0.01, shift=2.0, rotate=0.5, seed=4)
    write_frames(tmp_path / "b", burst.frames, bit_depth=16)
    plain = merge_burst(tmp_path / "b", config=MergeConfig(merge=merge))
    fine = merge_burst(tmp_path / "b", config=MergeConfig(merge=merge, scale=2))
    assert fine.image.shape == (160, 224, 3)
    t = torch.from_numpy(plain.image).permute(2, 0, 1)[None]
    upscaled = F.interpolate(t, scale_factor=2, mode="bicubic", align_corners=False)[0]
    upscaled = upscaled.clamp(0, 1).permute(1, 2, 0).numpy()
    gain = psnr(fine.image, burst.hr, border=6) - psnr(upscaled, burst.hr, border=6)
    assert gain >= 1.5, gain
