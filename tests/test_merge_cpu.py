"""The CPU merge (OpenCV + numpy) against the torch merge, and a CPU merge without torch."""

import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from burstsr.burst import config, merge, merge_cpu, superres, warp
from burstsr.burst.config import MergeConfig
from burstsr.burst.merge_torch import merge_torch
from burstsr.burst.pipeline import merge_burst
from burstsr.burst.synth import simulate_burst
from burstsr.io import load_burst

from conftest import texture, write_frames

TRANSFORM = np.array([[1.01, 0.012, 3.3], [-0.009, 0.994, -2.7], [2e-6, -3e-6, 1.0]])


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Texture with the smoothness of a camera image (detail down to ~1.5 px)."""
    return cv2.GaussianBlur(texture(h, w, seed=seed), (0, 0), 0.8)


def _chw(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)


def test_option_names_match_the_implementations():
    assert config.MERGE_METHODS == tuple(merge.MERGERS)
    assert config.KERNELS == tuple(superres.ACCUMULATORS)
    assert set(merge_cpu.CPU_MERGES) <= set(config.MERGE_METHODS)
    with pytest.raises(Exception, match="--merge mode"):
        MergeConfig(merge="mode").check()


@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
def test_warps_agree_within_one_level(interpolation):
    img = _photo(180, 240)
    ours, mask = merge_cpu.warp_frame(img, TRANSFORM, interpolation=interpolation)
    theirs, their_mask = warp.warp_frame(_chw(img), TRANSFORM, interpolation=interpolation)
    theirs, their_mask = theirs.permute(1, 2, 0).numpy(), their_mask.numpy()
    assert mask.dtype == bool and mask.shape == img.shape[:2]
    assert (mask != their_mask).mean() < 0.002  # only sub-pixel differences at the border
    both = mask & their_mask
    assert both.mean() > 0.9
    assert np.abs(ours - theirs)[both].max() <= 1 / 255


def test_robust_weights_agree_on_a_pooled_odd_sized_frame():
    """Over 2.25 MP the comparison runs on a 2x pooled grid with partial cells at the edges."""
    h, w = 1501, 1503
    rng = np.random.default_rng(5)
    scene = _photo(h, w, seed=1)
    img = scene.copy()
    img[400:600, 700:900] = 1 - img[400:600, 700:900]  # something moved
    warped, mask = merge_cpu.warp_frame(img, TRANSFORM)
    ref = merge_cpu.warp_frame(scene, TRANSFORM)[0] + rng.normal(0, 0.01, scene.shape)
    ref = ref.astype(np.float32)
    ours = merge_cpu.robust_weights(merge_cpu.local_luma(ref), warped, mask)
    theirs = merge.robust_weights(
        merge.local_luma(_chw(ref)), _chw(warped), torch.from_numpy(mask.copy())
    ).numpy()
    assert ours.shape == (h, w) and ours.dtype == np.float32
    assert np.abs(ours - theirs).max() < 1e-3
    assert ours[450:550, 750:850].max() < 0.05 and np.median(ours[mask]) == 1.0
    assert not ours[~mask].any()


@pytest.mark.parametrize("method", ["mean", "robust"])
def test_cpu_and_torch_merges_agree_within_one_level(tmp_path, method):
    burst = simulate_burst(_photo(120, 160, seed=3), frames=5, scale=1, noise=0.02, seed=4)
    write_frames(tmp_path / "b", burst.frames)
    cfg = MergeConfig(merge=method)
    result = merge_burst(tmp_path / "b", config=cfg)  # the CPU path
    frames = load_burst(tmp_path / "b")
    aligned = [
        (i, frames.read(i).pixels, np.array(f.transform))
        for i, f in enumerate(result.frames)
        if i > 0 and f.used
    ]
    assert len(aligned) == 4
    image, _ = merge_torch(frames.read(0).pixels, aligned, config=cfg, device="cpu")
    assert np.abs(result.image - image)[2:-2, 2:-2].max() <= 1 / 255


def test_merge_on_the_cpu_does_not_load_torch(tmp_path):
    write_frames(tmp_path / "b", simulate_burst(texture(64, 80), frames=3, scale=1).frames)
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from burstsr.cli import cli\n"
        f"args = ['-q', 'merge', {str(tmp_path / 'b')!r}, '-o', {str(tmp_path / 'm.png')!r},"
        " '--device', 'cpu']\n"
        "res = CliRunner().invoke(cli, args)\n"
        "assert res.exit_code == 0, res.output\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    assert (tmp_path / "m.png").is_file()
