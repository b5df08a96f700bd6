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


def _inside(transform: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """``0 <= u <= w - 1 and 0 <= v <= h - 1`` for every output pixel's sample (u, v), and
    where (u, v) lies within 1/32 px of an edge."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    d = transform[2, 0] * xs + transform[2, 1] * ys + transform[2, 2]
    u = (transform[0, 0] * xs + transform[0, 1] * ys + transform[0, 2]) / d
    v = (transform[1, 0] * xs + transform[1, 1] * ys + transform[1, 2]) / d
    inside = (u >= 0) & (u <= w - 1) & (v >= 0) & (v <= h - 1)
    near = (np.minimum(np.abs(u), np.abs(u - (w - 1))) < 1 / 32) | (
        np.minimum(np.abs(v), np.abs(v - (h - 1))) < 1 / 32
    )
    return inside, near


@pytest.mark.parametrize(("h", "w"), [(97, 131), (96, 130), (9, 11), (1, 5)])
def test_warp_mask_is_where_the_sample_lies_inside_the_frame(h, w):
    """The mask is exactly ``0 <= u <= w - 1 and 0 <= v <= h - 1`` for the sample (u, v): on
    the edge pixels themselves for whole-pixel shifts (odd and even sizes), and away from
    positions within 1/32 px of an edge (OpenCV's sampling resolution) for any motion."""
    image = np.zeros((h, w, 3), np.float32)
    for dx, dy in [(0, 0), (-3, 2), (2, -1)]:
        shift = np.array([[1.0, 0, dx], [0, 1.0, dy], [0, 0, 1.0]])
        _, mask = merge_cpu.warp_frame(image, shift)
        assert np.array_equal(mask, _inside(shift, h, w)[0]), (dx, dy)
    _, mask = merge_cpu.warp_frame(image, np.eye(3))
    assert mask.all()
    if min(h, w) > 20:
        _, mask = merge_cpu.warp_frame(image, TRANSFORM)
        inside, near = _inside(TRANSFORM, h, w)
        assert np.array_equal(mask[~near], inside[~near]) and inside.mean() > 0.85


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


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_integer_frames_merge_as_their_float_values(dtype):
    """Frames kept as decoded (uint8 / uint16) are merged exactly as their float32 values."""
    top = np.iinfo(dtype).max
    scene = _photo(90, 120, seed=5)
    frames = [np.round(np.clip(scene + d, 0, 1) * top).astype(dtype) for d in (0.0, 0.01, -0.02)]
    as_float = [(f / np.float32(top)).astype(np.float32) for f in frames]
    results = []
    for inputs in (frames, as_float):
        stack = merge_cpu.CpuStack(as_float[0], method="robust", interpolation="bicubic")
        for f in inputs[1:]:
            stack.add(f, TRANSFORM)
        results.append(stack.result())
    assert np.abs(results[0] - results[1]).max() < 1e-6
    assert frames[1].dtype == dtype  # the input is not changed


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_luma_of_integer_frames_is_within_a_few_sample_steps_of_the_float_one(dtype):
    from burstsr.burst.pyramid import to_gray

    top = np.iinfo(dtype).max
    frame = np.round(_photo(40, 50, seed=6) * top).astype(dtype)
    gray = to_gray(frame)
    assert gray.dtype == np.float32 and gray.shape == (40, 50)
    # OpenCV rounds the luma to a sample step (its 16-bit coefficients are fixed-point, good
    # to a few steps of 65535).
    step = 0.51 / 255 if dtype == np.uint8 else 4 / 65535
    assert np.abs(gray - to_gray((frame / np.float32(top)).astype(np.float32))).max() <= step


def test_cpu_merge_of_integer_frames_from_files_matches_the_float_path(tmp_path):
    """``merge_burst`` on the CPU keeps 8-bit frames as decoded until they are warped; the
    merge is the one the float path (torch, which reads float frames) gives."""
    burst = simulate_burst(_photo(120, 160, seed=7), frames=4, scale=1, noise=0.02, seed=8)
    write_frames(tmp_path / "b", burst.frames)
    result = merge_burst(tmp_path / "b", config=MergeConfig(merge="mean"))
    frames = load_burst(tmp_path / "b")
    aligned = [
        (i, frames.read(i).pixels, np.array(f.transform))
        for i, f in enumerate(result.frames)
        if i > 0 and f.used
    ]
    assert len(aligned) == 3 and aligned[0][1].dtype == np.float32
    stack = merge_cpu.CpuStack(frames.read(0).pixels, method="mean", interpolation="bicubic")
    for _, pixels, transform in aligned:
        stack.add(pixels, transform)
    assert np.abs(result.image - stack.result()).max() < 1e-5


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


def test_the_merge_runs_with_one_blas_thread_and_restores_the_setting(tmp_path):
    """Alignment's small BLAS calls from parallel threads must not wake a multi-threaded BLAS
    (on 2 cores that tripled the work): one BLAS thread while the merge runs, the caller's
    setting after it."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    write_frames(tmp_path / "b", simulate_burst(texture(64, 80), frames=3, scale=1).frames)

    def blas_threads() -> list[int]:
        info = threadpoolctl.threadpool_info()
        return [p["num_threads"] for p in info if p["user_api"] == "blas"]

    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        assert before  # numpy's BLAS is found
        seen = []
        merge_burst(tmp_path / "b", progress=lambda *_: seen.append(blas_threads()))
        assert blas_threads() == before
    assert seen and all(threads == [1] * len(before) for threads in seen)


def test_overlapping_merges_share_one_blas_limit_and_the_last_restores_it():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from burstsr.burst.pipeline import one_blas_thread

    def blas_threads() -> list[int]:
        info = threadpoolctl.threadpool_info()
        return [p["num_threads"] for p in info if p["user_api"] == "blas"]

    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        first, second = one_blas_thread(), one_blas_thread()
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)  # the first merge ends while the second runs
        assert blas_threads() == [1] * len(before)
        second.__exit__(None, None, None)
        assert blas_threads() == before


def test_a_stack_in_place_accumulates_into_the_reference_and_merges_the_same():
    scene = _photo(60, 80, seed=9)
    frames = [np.clip(scene + d, 0, 1).astype(np.float32) for d in (0.0, 0.02, -0.01)]
    results = []
    for in_place in (False, True):
        reference = frames[0].copy()
        stack = merge_cpu.CpuStack(
            reference, method="robust", interpolation="bicubic", in_place=in_place
        )
        for f in frames[1:]:
            stack.add(f, TRANSFORM)
        results.append(stack.result())
        assert np.shares_memory(results[-1], reference) == in_place
        assert np.array_equal(reference, frames[0]) != in_place
    assert np.array_equal(results[0], results[1])
