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


@pytest.mark.parametrize("all_inside", [False, True])
def test_the_fine_grid_gather_equals_the_kernels_written_out(all_inside):
    """Every fine pixel's 3x3 nearest samples weighted by the structure kernel exp(-d'Pd/2)
    and the wide one exp(-|d|^2 / (2 denoise^2)), d the offset in reference pixels, neighbours
    outside the frame left out: computed directly, pixel by pixel, against the gather. Also
    for a frame whose 3x3 neighbours all lie inside it (zoomed out against the reference:
    nothing to leave out, which the gather skips)."""
    from burstsr.burst.superres import KernelAccumulator

    rng = np.random.default_rng(0)
    h, w, s = 24, 30, 3
    reference = torch.from_numpy(texture(h, w, seed=4)).permute(2, 0, 1).contiguous()
    acc = KernelAccumulator(reference, s)
    angle = 0.03
    transform = np.array(
        [
            [np.cos(angle) * 1.01, -np.sin(angle), 1.3],
            [np.sin(angle), np.cos(angle) * 0.99, -0.7],
            [1e-4, -2e-4, 1.0],
        ]
    )
    if all_inside:  # reference pixels -0.33..29.67 / 23.67 land on frame pixels 1..28 / 1..22
        transform = np.array([[0.9, 0.0, 1.5], [0.0, 0.9, 1.2], [0.0, 0.0, 1.0]])
    frame = torch.from_numpy(rng.random((3, h, w), dtype=np.float32))
    acc.add(frame, transform)
    values, size, t, _ = acc.frames[0]
    top, bottom = 5, 41
    precision = acc._fine_rows(acc.precision, top, bottom, "bilinear")
    total, weight, total_wide, weight_wide = acc._gather(values, size, t, top, bottom, precision)

    samples = values.float().numpy()  # (h * w, 3), as the accumulator keeps them
    pxx, pxy, pyy = precision.double().numpy()
    centre = np.array([(w - 1) / 2, (h - 1) / 2, 1.0])
    m = transform @ centre
    jac = (transform[:2, :2] - np.outer(m[:2] / m[2], transform[2, :2])) / m[2]
    to_ref = np.linalg.inv(jac)
    ys, xs = np.mgrid[top:bottom, 0 : w * s]
    fine = np.stack([(xs - (s - 1) / 2) / s, (ys - (s - 1) / 2) / s, np.ones_like(xs)], -1)
    mapped = fine @ transform.T
    q = mapped[..., :2] / mapped[..., 2:]
    near = np.round(q)
    want = [
        np.zeros((3, *xs.shape)),
        np.zeros(xs.shape),
        np.zeros((3, *xs.shape)),
        np.zeros(xs.shape),
    ]
    for oy in (-1, 0, 1):
        for ox in (-1, 0, 1):
            n = near + (ox, oy)
            inside = (
                (n[..., 0] >= 0) & (n[..., 0] <= w - 1) & (n[..., 1] >= 0) & (n[..., 1] <= h - 1)
            )
            d = (q - n) @ to_ref.T
            form = pxx * d[..., 0] ** 2 + 2 * pxy * d[..., 0] * d[..., 1] + pyy * d[..., 1] ** 2
            k = np.exp(-0.5 * form) * inside
            k_wide = np.exp(-acc.wide * (d**2).sum(-1)) * inside
            index = (np.clip(n[..., 1], 0, h - 1) * w + np.clip(n[..., 0], 0, w - 1)).astype(int)
            v = samples[index].transpose(2, 0, 1)
            want[0] += v * k
            want[1] += k
            want[2] += v * k_wide
            want[3] += k_wide
    if all_inside:
        assert near[..., 0].min() >= 1 and near[..., 0].max() <= w - 2
        assert near[..., 1].min() >= 1 and near[..., 1].max() <= h - 2
    for got, expected in zip((total, weight, total_wide, weight_wide), want, strict=True):
        assert np.allclose(got.numpy(), expected, rtol=1e-4, atol=1e-5)
