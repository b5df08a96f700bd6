"""The robust merge: no ghosts where something moves, the mean's noise reduction elsewhere."""

import cv2
import numpy as np
import pytest

from burstsr.burst.pipeline import MergeConfig, merge_burst
from burstsr.burst.synth import move_image, random_transform
from burstsr.metrics import psnr

from conftest import texture, write_frames

H, W, N, SIZE = 128, 160, 8, 24


def moving_object_burst(tmp_path, seed=0):
    """A static scene shot handheld (sub-pixel shake), with a textured patch that crosses it."""
    rng = np.random.default_rng(seed)
    scene = cv2.GaussianBlur(texture(H, W, seed=seed), (0, 0), 1.0)
    patch = 1 - texture(SIZE, SIZE, seed=seed + 50)  # different from the background
    frames, clean0 = [], None
    path = np.zeros((H, W), bool)
    for k in range(N):
        t = np.eye(3) if k == 0 else random_transform(rng, (H, W), shift=1.5, rotate=0.3)
        img = move_image(scene, t)
        y, x = 52, 20 + 14 * k  # the object moves 14 px a frame, left to right
        img[y : y + SIZE, x : x + SIZE] = patch
        path[y : y + SIZE, x : x + SIZE] = True
        if k == 0:
            clean0 = img.copy()
        frames.append(np.clip(img + rng.normal(0, 0.03, img.shape), 0, 1).astype(np.float32))
    write_frames(tmp_path / "b", frames, bit_depth=16)
    static = ~cv2.dilate(path.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    static[:8], static[-8:], static[:, :8], static[:, -8:] = False, False, False, False
    return frames, clean0, path, static


@pytest.fixture
def merged(tmp_path):
    frames, clean, path, static = moving_object_burst(tmp_path)
    out = {
        m: merge_burst(tmp_path / "b", config=MergeConfig(merge=m)).image
        for m in ("mean", "robust")
    }
    return frames, clean, path, static, out


def test_robust_merge_does_not_ghost(merged):
    frames, clean, path, _, out = merged
    alone = psnr(frames[0][path], clean[path])
    assert psnr(out["robust"][path], clean[path]) > alone - 1.0
    assert psnr(out["mean"][path], clean[path]) < alone - 3.0  # the mean ghosts


def test_robust_merge_keeps_the_noise_reduction_where_nothing_moves(merged):
    frames, clean, _, static, out = merged
    alone = psnr(frames[0][static], clean[static])
    gain_mean = psnr(out["mean"][static], clean[static]) - alone
    gain_robust = psnr(out["robust"][static], clean[static]) - alone
    assert gain_mean > 5
    assert gain_robust >= 0.9 * gain_mean, (gain_robust, gain_mean)
