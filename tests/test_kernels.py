"""Structure-adaptive kernels and the fine-grid merge that uses them (``--kernel adaptive``)."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from burstsr.burst.camera import CameraRanges
from burstsr.burst.kernels import KernelParams, difference_noise, kernel_precision, noise_sigma
from burstsr.burst.pipeline import MergeConfig, merge_burst
from burstsr.burst.superres import KernelAccumulator
from burstsr.burst.synth import simulate_burst, simulate_camera_burst
from burstsr.cli import cli
from burstsr.metrics import periodic_pattern, psnr

from conftest import texture, write_frames


def test_noise_estimate_ignores_texture_in_part_of_the_image():
    rng = np.random.default_rng(0)
    img = np.full((128, 128), 0.5, np.float32)
    img[:, 64:] += 0.3 * rng.random((128, 64)).astype(np.float32)  # texture on one half
    noisy = img + 0.02 * rng.standard_normal(img.shape).astype(np.float32)
    assert noise_sigma(torch.from_numpy(noisy)) == pytest.approx(0.02, rel=0.2)


def test_kernels_are_narrow_across_edges_and_round_in_flat_areas():
    params = KernelParams()
    rng = np.random.default_rng(1)
    img = np.full((64, 64), 0.2, np.float32)
    img[:, 32:] = 0.8  # a vertical edge
    img += 0.01 * rng.standard_normal(img.shape).astype(np.float32)
    pxx, pxy, pyy = kernel_precision(torch.from_numpy(img), params=params)
    # on the edge: precise across it (x), loose along it (y)
    assert pxx[32, 31] > 10 * pyy[32, 31] and abs(pxy[32, 31]) < 0.1 * pxx[32, 31]
    assert pxx[32, 31] >= 1 / params.detail**2
    # far from it (noise only): wide in every direction, far wider than across the edge
    a, b, c = pxx[8:56, 4:24], pxy[8:56, 4:24], pyy[8:56, 4:24]
    largest = float(((a + c) / 2 + torch.sqrt(((a - c) / 2) ** 2 + b**2)).median())
    assert largest < 0.5 / params.detail**2 and largest < pxx[32, 31] / 10
    assert float(torch.minimum(a, c).median()) >= 1 / params.denoise**2 * 0.99


def test_a_flat_burst_stays_exactly_flat():
    frame = torch.full((3, 24, 32), 0.25)
    acc = KernelAccumulator(frame, 4)
    acc.add(frame, np.eye(3))
    shift = np.array([[1, 0, 0.37], [0, 1, -0.61], [0, 0, 1.0]])
    acc.add(frame, shift)
    image, confidence = acc.result(frame)
    assert image.shape == (3, 96, 128) and confidence.shape == (96, 128)
    assert torch.allclose(image, torch.full_like(image, 0.25), atol=1e-6)


def _merge(tmp_path, frames, kernel, **options):
    write_frames(tmp_path / kernel, frames)
    return merge_burst(tmp_path / kernel, config=MergeConfig(scale=4, kernel=kernel, **options))


def test_identical_frames_paint_no_pattern(tmp_path):
    """A burst that never moved samples one phase of the x4 grid only: the fixed kernel paints
    that grid; the adaptive one interpolates smoothly."""
    rng = np.random.default_rng(2)
    frame = np.clip(texture(48, 64, seed=2) + 0.02 * rng.standard_normal((48, 64, 3)), 0, 1)
    scores = {
        k: periodic_pattern(_merge(tmp_path, [frame] * 4, k).image)
        for k in ("gaussian", "adaptive")
    }
    assert scores["adaptive"] < 0.1 and scores["adaptive"] < scores["gaussian"] / 3, scores


@pytest.mark.parametrize("frames, zoom", [(2, 0.01), (8, 0.01), (8, 0.03)])
def test_camera_bursts_merge_cleanly(tmp_path, frames, zoom):
    hr = texture(192, 256, seed=3)
    ranges = CameraRanges(frames=(frames, frames), zoom=zoom)
    burst = simulate_camera_burst(hr, scale=4, seed=5, ranges=ranges)
    merged = _merge(tmp_path, burst.frames, "adaptive")
    up = (
        torch.nn.functional.interpolate(
            torch.from_numpy(burst.frames[0]).permute(2, 0, 1)[None], scale_factor=4, mode="bicubic"
        )[0]
        .clamp(0, 1)
        .permute(1, 2, 0)
        .numpy()
    )
    assert periodic_pattern(merged.image) < 0.1
    assert psnr(merged.image, burst.hr, border=8) > psnr(up, burst.hr, border=8)
    # the confidence map: about the number of frames that reached each pixel
    assert merged.confidence.shape == hr.shape[:2]
    assert 0.7 * frames < float(np.median(merged.confidence)) < 1.2 * frames


def test_confidence_drops_where_the_robust_merge_rejects_a_frame(tmp_path):
    hr = texture(64, 96, seed=4)
    burst = simulate_burst(hr, frames=4, scale=1, noise=0.01, shift=1.0, rotate=0.2, seed=2)
    frames = [f.copy() for f in burst.frames]
    frames[2][8:24, 8:24] = 1.0 - frames[2][8:24, 8:24]  # something moved in frame 2
    merged = _merge(tmp_path, frames, "adaptive")
    inside = merged.confidence[4 * 12 : 4 * 20, 4 * 12 : 4 * 20].mean()
    outside = merged.confidence[4 * 40 :, 4 * 50 :].mean()
    assert inside < 0.85 * outside
    assert periodic_pattern(merged.image) < 0.1


def test_merge_cli_takes_a_kernel_and_rejects_a_bad_one(tmp_path, small_burst):
    folder, _ = small_burst
    out = tmp_path / "o.png"
    res = CliRunner().invoke(cli, ["-q", "merge", str(folder), "-o", str(out), "--kernel", "x"])
    assert res.exit_code == 2 and not out.exists()
    res = CliRunner().invoke(
        cli, ["-q", "merge", str(folder), "-o", str(out), "--scale", "2", "--kernel", "gaussian"]
    )
    assert res.exit_code == 0, res.output and out.exists()


def test_the_fine_grid_is_the_same_whatever_its_bands():
    """The merge is built band by band from the frames it keeps: any band height gives the
    same image and confidence, bit for bit, as one band over the whole grid."""
    rng = np.random.default_rng(0)
    reference = torch.from_numpy(texture(70, 90, seed=4)).permute(2, 0, 1)
    frames = []
    for k in range(3):
        t = np.eye(3)
        t[:2, 2] = rng.uniform(-2, 2, 2)
        t[0, 1] = 0.01 * k
        weights = torch.rand(70, 90, generator=torch.Generator().manual_seed(k))
        frames.append((torch.from_numpy(texture(70, 90, seed=k)).permute(2, 0, 1), t, weights))
    results = []
    for rows, chunks in ((8, 1), (16, 3), (1024, 1)):  # 1024: the whole x4 grid in one band
        acc = KernelAccumulator(reference, 4, rows_per_chunk=rows, chunks_per_band=chunks)
        acc.add(reference, np.eye(3))
        for frame, t, weights in frames:
            acc.add(frame, t, weights)
        image, confidence = acc.result(reference)
        assert image.shape == (3, 280, 360) and not acc.frames  # the frames are released
        results.append((image.numpy(), confidence.numpy()))
    for image, confidence in results[:2]:
        assert np.array_equal(image, results[2][0]) and np.array_equal(confidence, results[2][1])


def test_kernel_shapes_are_the_same_in_bands_as_in_one_pass(monkeypatch):
    """Large images get their kernel shapes band by band, with the structure tensor's reach as
    context: the same shapes as one pass over the whole image."""
    from burstsr.burst import kernels

    luma = torch.from_numpy(texture(150, 70, seed=2).mean(axis=2))
    params = KernelParams(integration=2.0)
    whole = kernel_precision(luma, params=params, noise=0.01)
    monkeypatch.setattr(kernels, "BAND_PIXELS", 70 * 16)  # bands of 16 rows
    banded = kernel_precision(luma, params=params, noise=0.01)
    assert torch.allclose(banded, whole, rtol=1e-5, atol=1e-4)
    assert not torch.allclose(banded[:, :20], banded[:, 20:40])  # a real, varied field


def test_noise_estimate_of_an_image_too_small_to_measure_is_the_floor():
    assert noise_sigma(torch.rand(2, 50)) == 1e-3
    assert noise_sigma(torch.rand(50, 1)) == 1e-3


def _clumped_noise(rng: np.random.Generator, shape: tuple[int, ...], std: float) -> np.ndarray:
    """Noise spread over clumps of a few pixels, as demosaicing and JPEG leave it: white noise
    blurred (sigma 1), scaled to ``std``."""
    import cv2

    white = rng.standard_normal(shape).astype(np.float32)
    clumped = cv2.GaussianBlur(white, (0, 0), 1.0)
    return (std * clumped / clumped.std()).astype(np.float32)


def _gradient_level(noise: np.ndarray) -> float:
    """sqrt(E[gx^2 + gy^2]) of central differences: the noise level the kernels compare with."""
    gx = (noise[1:-1, 2:] - noise[1:-1, :-2]) / 2
    gy = (noise[2:, 1:-1] - noise[:-2, 1:-1]) / 2
    return float(np.sqrt(np.mean(gx**2 + gy**2)))


def test_the_difference_of_aligned_frames_measures_noise_not_texture():
    rng = np.random.default_rng(3)
    scene = texture(96, 128, seed=6).mean(axis=2)  # texture everywhere
    # Independent pixel noise: the level is its std, and the scene's texture cancels.
    a = scene + 0.01 * rng.standard_normal(scene.shape).astype(np.float32)
    b = scene + 0.01 * rng.standard_normal(scene.shape).astype(np.float32)
    valid = torch.ones(scene.shape, dtype=torch.bool)
    level = difference_noise(torch.from_numpy(a), torch.from_numpy(b), valid)
    assert level == pytest.approx(0.01, rel=0.15)
    # Clumped noise: the level of its gradients, which the pixel-scale estimate misses.
    na, nb = _clumped_noise(rng, scene.shape, 0.02), _clumped_noise(rng, scene.shape, 0.02)
    level = difference_noise(torch.from_numpy(scene + na), torch.from_numpy(scene + nb), valid)
    assert level == pytest.approx(_gradient_level(na), rel=0.25)
    assert noise_sigma(torch.from_numpy(0.5 + na)) < 0.5 * level
    # Only cells wholly inside the aligned frame count; none inside: no measure.
    moved = torch.from_numpy(scene + nb)
    moved[:, :64] = 0.0  # a region the aligned frame does not cover
    covered = valid.clone()
    covered[:, :64] = False
    assert difference_noise(torch.from_numpy(scene + na), moved, covered) == pytest.approx(
        level, rel=0.25
    )
    assert difference_noise(torch.from_numpy(a), torch.from_numpy(b), ~valid) is None


def test_kernels_stay_round_in_flat_areas_with_clumped_noise():
    """A flat scene with noise in clumps of a few pixels (a phone JPEG's sky): measured from
    the aligned frames, the noise is seen as noise, the kernels stay wide and the fine grid
    shows no swirls; judged from the reference alone, the clumps count as edges."""
    import cv2

    rng = np.random.default_rng(4)
    h, w = 64, 80
    noises = [_clumped_noise(rng, (h, w), 0.01) for _ in range(6)]
    frames = [torch.from_numpy(np.repeat((0.5 + n)[None], 3, axis=0)) for n in noises]
    shifts = rng.uniform(-1, 1, size=(len(frames), 2))
    valid = torch.ones(h, w, dtype=torch.bool)

    def merged(measure: bool) -> tuple[float, float, float]:
        """The noise the kernels used, the median width of the kernels across their narrowest
        direction (frame pixels), the fine grid's high-pass spread."""
        acc = KernelAccumulator(frames[0], 4)
        acc.add(frames[0], np.eye(3))
        for frame, (dx, dy) in zip(frames[1:], shifts[1:], strict=True):
            acc.add(frame, np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1.0]]))
            if measure:  # the scene is flat: the frame is its own aligned version
                acc.measure_noise(frame, valid)
        a, b, c = acc.precision[:, 8:-8, 8:-8]
        sharpest = (a + c) / 2 + torch.sqrt(((a - c) / 2) ** 2 + b**2)
        image, _ = acc.result(frames[0])
        luma = image.mean(dim=0)[16:-16, 16:-16].numpy()
        high_pass = luma - cv2.GaussianBlur(luma, (0, 0), 2)
        return acc.noise, float(sharpest.rsqrt().median()), float(high_pass.std())

    noise, width, spread = merged(True)
    noise_alone, width_alone, spread_alone = merged(False)
    assert noise == pytest.approx(_gradient_level(noises[0]), rel=0.25)
    assert noise_alone < 0.5 * noise
    assert width >= 0.3 and width_alone <= KernelParams().detail
    assert spread < 0.6 * spread_alone


def test_the_noise_difference_is_the_same_in_bands_as_in_one_pass(monkeypatch):
    from burstsr.burst import kernels

    rng = np.random.default_rng(5)
    a, b = (torch.from_numpy(rng.random((101, 75), dtype=np.float32)) for _ in range(2))
    valid = torch.ones(101, 75, dtype=torch.bool)
    valid[40:47, 10:30] = False
    whole = difference_noise(a, b, valid)
    monkeypatch.setattr(kernels, "BAND_PIXELS", 75 * 16)  # bands of 16 rows
    assert difference_noise(a, b, valid) == pytest.approx(whole, rel=1e-6)
    monkeypatch.setattr(kernels, "BAND_PIXELS", 1)  # bands of one cell row
    assert difference_noise(a, b, valid) == pytest.approx(whole, rel=1e-6)
