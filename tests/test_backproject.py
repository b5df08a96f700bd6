"""Back-projection onto the frames: the camera model, the fit that gates it, and what it buys."""

from pathlib import Path

import cv2
import numpy as np
from click.testing import CliRunner
from test_raw import raw_burst

from burstsr.burst.synth import simulate_burst
from burstsr.cli import cli
from burstsr.io import read_image
from burstsr.metrics import psnr
from burstsr.refiner.backproject import (
    MIN_FRAMES,
    Observation,
    agreement,
    back_project,
    band_observations,
    central_region,
    crop_observations,
    fits_area_sampling,
    predict,
    residual_power,
    shrink,
    worth_back_projecting,
)
from burstsr.refiner.checkpoint import save_generator
from burstsr.refiner.networks import Generator, GeneratorConfig

from conftest import texture, write_frames

SCALE = 4


def _burst(hr: np.ndarray, *, noise: float = 0.0, seed: int = 0):
    burst = simulate_burst(hr, frames=6, scale=SCALE, noise=noise, quantize=False, seed=seed)
    return burst, [Observation(f, t) for f, t in zip(burst.frames, burst.transforms, strict=True)]


def test_the_prediction_of_the_scene_gives_back_its_frames():
    burst, observations = _burst(texture(96, 128, seed=1))
    for obs in observations:
        prediction, valid = predict(burst.hr, obs.transform, SCALE)
        assert prediction.shape == obs.frame.shape and valid.mean() > 0.6
        assert np.abs(prediction - obs.frame)[valid].max() < 2e-3
        # Resampled bicubically, as back-projection's iterations do: close on average.
        cubic, _ = predict(burst.hr, obs.transform, SCALE, interpolation=cv2.INTER_CUBIC)
        assert np.abs(cubic - obs.frame)[valid].mean() < 1.5e-3
        # Moved the wrong way, it does not.
        wrong, _ = predict(burst.hr, np.linalg.inv(obs.transform), SCALE)
        if np.abs(obs.transform - np.eye(3)).max() > 0.05:
            assert np.abs(wrong - obs.frame)[valid].mean() > 5e-3


def test_back_projection_brings_a_soft_estimate_back_toward_the_scene():
    burst, observations = _burst(texture(96, 128, seed=2), noise=0.01)
    soft = cv2.GaussianBlur(burst.hr, (0, 0), 2.0)
    kept = soft.copy()
    sharper = back_project(soft, observations, SCALE, iterations=4)
    assert np.array_equal(soft, kept)  # the input is left as it was
    assert psnr(sharper, burst.hr) > psnr(soft, burst.hr) + 1.5
    before = residual_power(soft, observations, SCALE, blurs=(0.0,))[0.0]
    after = residual_power(sharper, observations, SCALE, blurs=(0.0,))[0.0]
    assert after < before / 3
    assert sharper.min() >= 0 and sharper.max() <= 1


def test_the_mean_residual_is_shrunk_where_it_is_only_the_frames_noise():
    # A smooth scene restored exactly: every residual is the frames' noise, and adding its mean
    # back would paint that noise in; shrunk against it, little of it gets through.
    hr = cv2.GaussianBlur(texture(96, 128, seed=9), (0, 0), 6.0)
    burst = simulate_burst(hr, frames=8, scale=SCALE, noise=0.02, quantize=False, seed=3)
    observations = [Observation(f, t) for f, t in zip(burst.frames, burst.transforms, strict=True)]
    shrunk = back_project(burst.hr, observations, SCALE)
    unshrunk = back_project(burst.hr, observations, SCALE, shrinkage=0)
    assert psnr(shrunk, burst.hr) > psnr(unshrunk, burst.hr) + 2.0
    assert psnr(shrunk, burst.hr) > 36.0
    # Where the residual stands above the noise (a soft estimate of a detailed scene), the
    # shrinking takes nothing away.
    burst, observations = _burst(texture(96, 128, seed=2), noise=0.02)
    soft = cv2.GaussianBlur(burst.hr, (0, 0), 2.0)
    gain = psnr(back_project(soft, observations, SCALE), burst.hr) - psnr(soft, burst.hr)
    plain = psnr(back_project(soft, observations, SCALE, shrinkage=0), burst.hr)
    assert gain > 3.0 and psnr(soft, burst.hr) + gain > plain - 0.1
    # The gain itself: m^2 / (m^2 + noise^2), in place.
    mean = np.array([[[0.0, 0.01, 0.1]]], np.float32)
    out = shrink(mean, np.array([[0.01]], np.float32))
    assert out is mean and np.allclose(out, [[[0.0, 0.005, 0.1 * 100 / 101]]], atol=1e-6)


def test_the_fit_tells_area_sampled_frames_from_frames_behind_a_lens_blur():
    hr = texture(128, 160, seed=3)
    _, sharp = _burst(hr, noise=0.005)
    assert fits_area_sampling(hr, sharp, SCALE)[0]
    # The same motions seen through a lens blur of 0.6 frame pixels: the frames are softer
    # than the scene area-sampled, and the fit says so.
    _, soft = _burst(cv2.GaussianBlur(hr, (0, 0), 0.6 * SCALE), noise=0.005)
    fits, power = fits_area_sampling(hr, soft, SCALE)
    assert not fits and power[0.2] < power[0.0]


def test_a_crop_of_the_reference_is_a_problem_of_its_own():
    burst, observations = _burst(texture(128, 160, seed=4))
    x0, y0, w, h = 8, 6, 24, 20  # frame pixels
    crop = crop_observations(observations, x0, y0, w, h)
    part = burst.hr[y0 * SCALE : (y0 + h) * SCALE, x0 * SCALE : (x0 + w) * SCALE]
    for whole, local in zip(observations, crop, strict=True):
        full, _ = predict(burst.hr, whole.transform, SCALE)
        cut, valid = predict(part, local.transform, SCALE)
        assert valid.sum() > 0.3 * valid.size
        expected = full[y0 : y0 + h, x0 : x0 + w]
        assert np.abs(cut - expected)[valid].max() < 2e-3


def test_auto_leaves_bursts_of_few_frames_alone():
    burst, observations = _burst(texture(96, 128, seed=7), noise=0.005)
    merge = burst.frames[0]  # on the frames' grid; the "model" below upscales it
    region = central_region(*merge.shape[:2], side=16)
    x0, y0, w, h = region
    assert (w, h) == (16, 16) and (x0, y0) == ((32 - 16) // 2, (24 - 16) // 2)

    def restore(image, confidence=None):  # a perfect restoration of the region
        return burst.hr[y0 * SCALE : (y0 + h) * SCALE, x0 * SCALE : (x0 + w) * SCALE]

    crop = crop_observations(observations, *region)
    assert worth_back_projecting(crop, merge, restore, region, grid=1)[0]
    assert MIN_FRAMES == 4 and len(crop) == 6
    assert worth_back_projecting(crop[:4], merge, restore, region, grid=1)[0]
    assert worth_back_projecting(crop[:3], merge, restore, region, grid=1) == (False, {})


def _tiny_model(path: Path) -> Path:
    import torch

    torch.manual_seed(0)
    config = GeneratorConfig(scale=SCALE, channels=8, blocks=1)
    return save_generator(path, Generator(config).eval())


def test_run_back_projects_where_the_frames_are_area_sampled(tmp_path):
    burst = simulate_burst(texture(128, 160, seed=5), frames=6, scale=SCALE, noise=0.005, seed=1)
    write_frames(tmp_path / "b", burst.frames, bit_depth=16)
    model = _tiny_model(tmp_path / "m.pt")
    outputs = {}
    for mode in ("on", "off", "auto"):
        out = tmp_path / f"{mode}.png"
        args = ["-q", "run", str(tmp_path / "b"), "-o", str(out), "--model", str(model)]
        res = CliRunner().invoke(cli, [*args, "--back-project", mode])
        assert res.exit_code == 0, res.output
        outputs[mode] = read_image(out).pixels
        assert outputs[mode].shape == burst.hr.shape
    # An untrained model restores badly; back-projected onto the frames, it comes far closer.
    assert psnr(outputs["on"], burst.hr) > psnr(outputs["off"], burst.hr) + 1.0
    assert np.array_equal(outputs["auto"], outputs["on"])  # these frames are area-sampled


def test_run_leaves_frames_behind_a_lens_blur_alone_and_refuses_raw(tmp_path):
    hr = cv2.GaussianBlur(texture(128, 160, seed=6), (0, 0), 0.8 * SCALE)
    burst = simulate_burst(hr, frames=6, scale=SCALE, noise=0.005, seed=2)
    write_frames(tmp_path / "b", burst.frames, bit_depth=16)
    model = _tiny_model(tmp_path / "m.pt")
    # The shipped model restores detail the blurred frames no longer show: they look softer
    # than its output area-sampled, so auto leaves that output as it is.
    for mode in ("auto", "off"):
        args = ["-q", "run", str(tmp_path / "b"), "-o", str(tmp_path / f"{mode}.png")]
        res = CliRunner().invoke(cli, [*args, "--back-project", mode])
        assert res.exit_code == 0, res.output
    assert np.array_equal(
        read_image(tmp_path / "auto.png").pixels, read_image(tmp_path / "off.png").pixels
    )
    # Back-projected at the model's scale, then resized to the size asked for.
    args = ["-q", "run", str(tmp_path / "b"), "--model", str(model), "--back-project", "on"]
    res = CliRunner().invoke(cli, [*args, "--outscale", "2", "-o", str(tmp_path / "x2.png")])
    assert res.exit_code == 0, res.output
    assert read_image(tmp_path / "x2.png").shape == (64, 80)
    # Not for RAW frames (merged in linear light): said at once, nothing written.
    raw_burst(tmp_path / "raw", n=3)
    args = ["-q", "run", str(tmp_path / "raw"), "--model", str(model), "--back-project", "on"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2 and "RAW" in res.stderr and "Traceback" not in res.output
    assert res.exit_code == 2 and "--back-project" in res.stderr
    assert not list(tmp_path.glob("result*"))


def test_an_object_that_moved_in_one_frame_leaves_no_ghost():
    burst, observations = _burst(texture(128, 160, seed=8), noise=0.005)
    frame = observations[3].frame.copy()
    frame[8:20, 10:26] = frame[8:20, 10:26][::-1, ::-1]  # something moved in frame 3 only
    observations[3] = Observation(frame, observations[3].transform)
    area = (slice(8 * SCALE, 20 * SCALE), slice(10 * SCALE, 26 * SCALE))
    soft = cv2.GaussianBlur(burst.hr, (0, 0), 2.0)
    out = back_project(soft, observations, SCALE)
    # The frames that agree sharpen the area; the one that does not is left out there.
    assert psnr(out[area], burst.hr[area]) > psnr(soft[area], burst.hr[area]) + 1.0
    trust = agreement(frame - predict(burst.hr, observations[3].transform, SCALE)[0],
                      predict(burst.hr, observations[3].transform, SCALE)[1])  # fmt: skip
    assert trust[10:18, 12:24].max() < 0.05 and np.median(trust) > 0.5


def test_an_adversarial_model_is_tested_with_the_model_it_started_from(tmp_path):
    import torch

    from burstsr.refiner.checkpoint import load_adversarial_start, load_generator

    torch.manual_seed(0)
    start = save_generator(
        tmp_path / "start.pt", Generator(GeneratorConfig(scale=SCALE, channels=8))
    )
    torch.manual_seed(1)
    end = Generator(GeneratorConfig(scale=SCALE, channels=8))
    adversarial = {"init": str(start), "adv_weight": 0.05, "steps": 100, "pretrain_steps": 0}
    gan = save_generator(tmp_path / "gan.pt", end, train_args=adversarial)
    tester = load_adversarial_start(gan)
    expected = load_generator(start).state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in tester.state_dict().items())
    # Pixel-loss training (an adversarial weight, but no step past the pre-training), no start
    # to load, or a shipped fidelity model: the model is its own tester.
    pixel = {**adversarial, "pretrain_steps": 100}
    assert load_adversarial_start(save_generator(tmp_path / "p.pt", end, train_args=pixel)) is None
    lost = {**adversarial, "init": str(tmp_path / "gone.pt")}
    assert load_adversarial_start(save_generator(tmp_path / "l.pt", end, train_args=lost)) is None
    assert load_adversarial_start("burst") is None
    # The shipped gan draws texture sharper than the frames: asked with its own output, these
    # area-sampled frames looked softer than area sampling and auto left gan alone; asked with
    # burst, the model it started from, auto back-projects (as on does), far closer to the scene.
    burst = simulate_burst(texture(128, 160, seed=5), frames=6, scale=SCALE, noise=0.005, seed=1)
    write_frames(tmp_path / "b", burst.frames, bit_depth=16)
    outputs = {}
    for mode in ("auto", "on", "off"):
        out = tmp_path / f"{mode}.png"
        args = ["-q", "run", str(tmp_path / "b"), "--model", "gan", "-o", str(out)]
        res = CliRunner().invoke(cli, [*args, "--back-project", mode])
        assert res.exit_code == 0, res.output
        outputs[mode] = read_image(out).pixels
    assert np.array_equal(outputs["auto"], outputs["on"])
    assert psnr(outputs["auto"], burst.hr) > psnr(outputs["off"], burst.hr) + 2.0


def test_back_projection_in_bands_gives_what_one_pass_gives():
    burst, observations = _burst(texture(160, 128, seed=10), noise=0.01)
    soft = cv2.GaussianBlur(burst.hr, (0, 0), 2.0)
    whole = back_project(soft, observations, SCALE, iterations=3)
    banded = back_project(soft, observations, SCALE, iterations=3, band_rows=32)
    bands = []
    back_project(soft, observations, SCALE, iterations=3, band_rows=32,
                 progress=lambda done, total: bands.append((done, total)))  # fmt: skip
    assert bands[-1][0] == bands[-1][1] == 3 * 5 and len(bands) == 15  # 5 bands of 32 rows
    # Away from the image's edges (which few frames see) the same values; over the image the
    # same quality.
    inner = (slice(16, -16), slice(16, -16))
    assert np.abs(banded - whole)[inner].max() < 0.01
    assert abs(psnr(banded, burst.hr) - psnr(whole, burst.hr)) < 0.05
    # A band's frames: cut to its rows where each frame sees it, with the motion re-expressed.
    rows = band_observations(observations, 10, 12)
    part = burst.hr[10 * SCALE : 22 * SCALE]
    for whole_obs, band_obs in zip(observations, rows, strict=True):
        full, _ = predict(burst.hr, whole_obs.transform, SCALE)
        cut, valid = predict(part, band_obs.transform, SCALE)
        assert band_obs.frame.shape[0] == 12 and valid.mean() > 0.3
        frame_rows = np.nonzero(np.all(whole_obs.frame == band_obs.frame[:1], axis=(1, 2)))[0]
        top = int(frame_rows[0])
        assert np.abs(cut - full[top : top + 12])[valid].max() < 2e-3
