import gc
import weakref

import cv2
import numpy as np
import pytest
import torch

from burstsr.burst.merge import MERGERS, merge_frames
from burstsr.burst.pipeline import MergeConfig, merge_burst
from burstsr.burst.synth import simulate_burst
from burstsr.burst.warp import warp_frame
from burstsr.io import write_image
from burstsr.metrics import psnr

from conftest import texture, write_frames


def _tensor(img: np.ndarray, device="cpu") -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).to(device)


def _crop(img: np.ndarray, border: int = 8) -> np.ndarray:
    return img[border:-border, border:-border]


def test_gain_is_close_to_the_noise_limit(tmp_path):
    """Without aliasing, merging N frames of independent noise gains up to 10*log10(N) dB."""
    n = 8
    scene = cv2.GaussianBlur(texture(160, 200, seed=7), (0, 0), 1.2)  # smooth: no aliasing
    burst = simulate_burst(
        scene, frames=n, scale=1, noise=0.05, shift=2.0, rotate=0.5, quantize=False, seed=2
    )
    write_frames(tmp_path / "b", burst.frames, bit_depth=16)
    result = merge_burst(tmp_path / "b")
    assert result.used == n
    single = psnr(_crop(burst.frames[0]), _crop(burst.clean))
    merged = psnr(_crop(result.image), _crop(burst.clean))
    assert merged - single >= 0.8 * 10 * np.log10(n), (single, merged)


def _classic_recipe(frames: list[np.ndarray]) -> np.ndarray:
    """The classic stacking script: full-resolution ECC homography to the first frame (identity
    start), cv2.warpPerspective, average where the warped frame is valid."""
    h, w = frames[0].shape[:2]
    ref = cv2.cvtColor(frames[0], cv2.COLOR_RGB2GRAY)
    total = frames[0].astype(np.float64).copy()
    count = np.ones((h, w, 1))
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 500, 1e-8)
    for frame in frames[1:]:
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        _, warp = cv2.findTransformECC(
            ref, gray, np.eye(3, dtype=np.float32), cv2.MOTION_HOMOGRAPHY, criteria, None, 5
        )
        flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
        warped = cv2.warpPerspective(
            frame, warp, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE
        )
        valid = cv2.warpPerspective(
            np.ones((h, w), np.float32),
            warp,
            (w, h),
            flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
        )[..., None]
        total += warped * valid
        count += valid
    return (total / count).astype(np.float32)


def test_mean_merge_agrees_with_the_classic_recipe(tmp_path):
    burst = simulate_burst(
        texture(128, 160, seed=5), frames=5, scale=1, noise=0.02, shift=1.5, rotate=0.5, seed=3
    )
    write_frames(tmp_path / "b", burst.frames)
    ours = merge_burst(tmp_path / "b").image
    classic = _classic_recipe(burst.frames)
    # Same recipe, same answer up to interpolation details and the sub-pixel ECC spread.
    assert psnr(_crop(ours), _crop(classic)) > 40
    assert (
        abs(psnr(_crop(ours), _crop(burst.clean)) - psnr(_crop(classic), _crop(burst.clean))) < 0.3
    )


def test_warp_matches_opencv_bilinear():
    img = texture(96, 128, seed=2)
    t = np.array([[0.998, 0.02, 1.3], [-0.015, 1.001, -0.7], [1e-5, -2e-5, 1.0]])
    warped, mask = warp_frame(_tensor(img), t, interpolation="bilinear")
    expected = cv2.warpPerspective(img, t, (128, 96), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    ours = warped.permute(1, 2, 0).numpy()
    m = mask.numpy()
    assert m.mean() > 0.9
    assert np.abs(ours[m] - expected[m]).max() < 2e-3  # OpenCV uses 1/32 px fixed-point weights


def _outlier_burst():
    rng = np.random.default_rng(0)
    clean = texture(64, 80, seed=9)
    frames = [
        np.clip(clean + rng.normal(0, 0.02, clean.shape), 0, 1).astype(np.float32) for _ in range(7)
    ]
    frames[4] = frames[4].copy()
    frames[4][16:48, 20:60] = 1.0  # a flash, a bird, a passer-by: one frame is wrong here
    full = torch.ones(64, 80, dtype=torch.bool)
    return clean, [(_tensor(f), full) for f in frames]


@pytest.mark.parametrize("method", ["median", "sigma-clip"])
def test_robust_mergers_reject_an_outlier_frame(method):
    clean, frames = _outlier_burst()
    region = (slice(16, 48), slice(20, 60))
    mean = merge_frames(frames, method="mean").image.permute(1, 2, 0).numpy()
    robust = merge_frames(frames, method=method).image.permute(1, 2, 0).numpy()
    assert psnr(mean[region], clean[region]) < 25  # the mean shows the outlier
    assert psnr(robust[region], clean[region]) > 30
    assert psnr(robust, clean) > psnr(mean, clean) + 10


def test_sigma_clip_keeps_the_noise_reduction_of_the_mean():
    rng = np.random.default_rng(1)
    clean = texture(64, 64, seed=4)
    full = torch.ones(64, 64, dtype=torch.bool)
    frames = [
        (_tensor(np.clip(clean + rng.normal(0, 0.03, clean.shape), 0, 1).astype(np.float32)), full)
        for _ in range(8)
    ]
    mean = merge_frames(frames, method="mean").image.permute(1, 2, 0).numpy()
    clipped = merge_frames(frames, method="sigma-clip").image.permute(1, 2, 0).numpy()
    assert psnr(clipped, clean) > psnr(mean, clean) - 0.3


def test_median_of_even_count_is_mid_value_and_masks_are_respected():
    values = [0.1, 0.2, 0.4, 0.9]
    frames = [(torch.full((1, 2, 2), v), torch.ones(2, 2, dtype=torch.bool)) for v in values]
    frames.append((torch.full((1, 2, 2), 5.0), torch.zeros(2, 2, dtype=torch.bool)))  # invalid
    out = merge_frames(frames, method="median")
    np.testing.assert_allclose(out.image.numpy(), 0.3, atol=1e-6)
    np.testing.assert_allclose(out.count.numpy(), 4)
    mean = merge_frames(frames, method="mean")
    np.testing.assert_allclose(mean.image.numpy(), 0.4, atol=1e-6)


def test_mean_streams_one_frame_at_a_time():
    alive = []

    def frames():
        for _ in range(6):
            image = torch.rand(3, 32, 32)
            alive.append(weakref.ref(image))
            yield image, torch.ones(32, 32, dtype=torch.bool)
            gc.collect()
            assert sum(r() is not None for r in alive) <= 1

    merge_frames(frames(), method="mean")


def test_unknown_merger_is_an_error():
    with pytest.raises(ValueError, match="sigma-clip"):
        merge_frames([], method="mode")
    assert set(MERGERS) == {"mean", "median", "sigma-clip", "robust"}


def test_pipeline_on_device_matches_cpu(small_burst, device):
    folder, _ = small_burst
    cpu = merge_burst(folder, device="cpu").image
    other = merge_burst(folder, device=device).image
    # The CPU merges with OpenCV, other devices with torch: within one level, away from the
    # border, where a frame's sub-pixel coverage may differ between the two warps.
    assert np.abs(other - cpu)[3:-3, 3:-3].max() <= 1 / 255
    # The median merge is torch on every device: the same numbers.
    median = MergeConfig(merge="median")
    cpu = merge_burst(folder, config=median, device="cpu").image
    other = merge_burst(folder, config=median, device=device).image
    np.testing.assert_allclose(other, cpu, atol=1e-4)


def test_misaligned_frame_is_left_out_not_averaged(tmp_path):
    burst = simulate_burst(texture(96, 128, seed=1), frames=4, scale=1, noise=0.02, seed=0)
    frames = list(burst.frames) + [texture(96, 128, seed=99)]  # a frame of another scene
    write_frames(tmp_path / "b", frames)
    result = merge_burst(tmp_path / "b")
    assert result.used == 4
    assert not result.frames[4].used and result.frames[4].message
    clean_result = merge_burst(tmp_path / "b", config=MergeConfig(reference="0"))
    assert psnr(result.image, burst.clean) == pytest.approx(psnr(clean_result.image, burst.clean))


def test_sharpest_reference_is_picked(tmp_path):
    scene = texture(96, 128, seed=2)
    sharp = scene
    blurred = [cv2.GaussianBlur(scene, (0, 0), 1.5) for _ in range(3)]
    write_frames(tmp_path / "b", [blurred[0], blurred[1], sharp, blurred[2]])
    result = merge_burst(tmp_path / "b", config=MergeConfig(reference="sharpest"))
    assert result.reference.endswith("frame_02.png")
    assert result.frames[2].reference


def test_headers_are_checked_before_any_frame_is_decoded(tmp_path, monkeypatch):
    """A frame of another size, or too few readable frames, stop the merge from the headers
    alone: nothing is decoded."""
    import burstsr.io.read as reader
    from burstsr.errors import InputError

    frames = simulate_burst(texture(48, 64), frames=4, scale=1, noise=0.01, seed=0).frames
    paths = write_frames(tmp_path / "b", frames)
    write_image(paths[-1], texture(40, 64))  # the last frame has another size
    decoded = []
    with monkeypatch.context() as patch:
        patch.setattr(reader, "read_image", lambda p: decoded.append(p))
        with pytest.raises(InputError, match=r"frame_03.png: size 64x40 differs from frame_00"):
            merge_burst(tmp_path / "b")
    assert decoded == []
    paths[-1].write_bytes(b"not an image")
    for p in paths[1:3]:
        p.write_bytes(b"")
    with pytest.raises(InputError, match=r"fewer than 2 usable frames \(only 1 of 4"):
        merge_burst(tmp_path / "b", config=MergeConfig(skip_bad=True))
