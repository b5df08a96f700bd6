"""The lens blur as a model input: pairs that record it, the estimator that reads it off a merge,
and generators that take it (training, warm start, enhance, the command line)."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from burstsr.cli import cli
from burstsr.errors import CheckpointError, InputError
from burstsr.io import write_image
from burstsr.io.confidence import write_confidence
from burstsr.refiner.blur import (
    BlurEstimator,
    BlurEstimatorConfig,
    estimate_blur,
    load_estimator,
    save_estimator,
    train_estimator,
)
from burstsr.refiner.checkpoint import load_generator
from burstsr.refiner.config import BlurTrainConfig
from burstsr.refiner.data import PairDataset, find_pairs, scene_blur
from burstsr.refiner.enhance import enhance_image
from burstsr.refiner.networks import Generator, GeneratorConfig
from burstsr.refiner.train import TrainConfig, init_from, train

from conftest import texture

BLURS = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.25, 0.55]


def fine_grid_merge(hr: np.ndarray, blur: float, seed: int) -> np.ndarray:
    """What a x4-grid merge of a burst through a lens of ``blur`` frame pixels looks like:
    the scene blurred (4 * blur HR pixels), area-sampled x4, brought back to the fine grid
    by bicubic interpolation, with a little noise."""
    h, w = hr.shape[:2]
    soft = cv2.GaussianBlur(hr, (0, 0), 4 * blur) if blur > 0 else hr
    small = cv2.resize(soft, (w // 4, h // 4), interpolation=cv2.INTER_AREA)
    merged = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    noise = np.random.default_rng(seed).normal(0, 0.004, merged.shape).astype(np.float32)
    return np.clip(merged + noise, 0, 1)


def make_blur_pairs(root: Path, blurs=BLURS, size: int = 96) -> Path:
    """x4-grid pairs whose meta.json records each burst's lens blur, as synth writes them."""
    for i, blur in enumerate(blurs):
        scene = root / f"s{i:02d}"
        scene.mkdir(parents=True)
        hr = texture(size, size, seed=40 + i, fine=1.0)
        write_image(scene / "HR.png", hr)
        write_image(scene / "result.png", fine_grid_merge(hr, blur, i), bit_depth=16)
        write_confidence(scene / "confidence.png", np.full((size, size), 8.0, np.float32))
        kind = {"degradation": "simple"} if blur == 0 else {"degradation": "camera"}
        if blur:
            kind["camera"] = {"blur": blur}
        (scene / "meta.json").write_text(json.dumps({**kind, "merge_scale": 4}))
    return root


def test_pairs_read_the_blur_their_meta_records(tmp_path):
    pairs = find_pairs(make_blur_pairs(tmp_path / "pairs", blurs=[0.0, 0.6])).pairs
    assert [scene_blur(p) for p in pairs] == [0.0, 0.6]
    data = PairDataset(pairs, 1, 32, align=4, confidence=True, blur=True, blur_jitter=0.1)
    merged, _ = data.batch(64, torch.Generator().manual_seed(0))
    assert merged.shape == (64, 5, 32, 32)
    values = merged[:, 4]
    assert torch.all(values == values[:, :1, :1])  # one value a crop
    simple, camera = values[:, 0, 0][values[:, 0, 0] < 0.3], values[:, 0, 0][values[:, 0, 0] > 0.3]
    assert len(simple) and len(camera)
    assert simple.min() >= 0 and simple.max() <= 0.1  # jittered, never below 0
    assert (camera - 0.6).abs().max() <= 0.1 + 1e-6 and camera.std() > 0.01
    (pairs[0].merged.parent / "meta.json").write_text("{}")
    with pytest.raises(InputError, match="meta.json"):
        PairDataset(pairs, 1, 32, align=4, blur=True)


def test_the_estimator_learns_the_blur_of_scenes_it_did_not_see(tmp_path):
    """Trained on crops of x4-grid merges of known blur, the whole-image estimate of held-out
    scenes is far closer than the best constant guess (the training scenes' mean)."""
    make_blur_pairs(tmp_path / "pairs")
    config = BlurTrainConfig(
        pairs=str(tmp_path / "pairs"),
        out=str(tmp_path / "est"),
        channels=16,
        steps=300,
        batch=8,
        patch=64,
        lr=3e-3,
        val_fraction=0.25,
        val_every=100,
    )
    best = train_estimator(config)
    estimator = load_estimator(tmp_path / "est")
    assert (
        best["val_mae"]
        == json.loads((tmp_path / "est" / "estimator.json").read_text())["metrics"]["val_mae"]
    )
    # New scenes, a range of blurs: the estimates follow them.
    truth, found = [], []
    for i, blur in enumerate([0.0, 0.3, 0.6, 0.9]):
        hr = texture(128, 128, seed=90 + i, fine=1.0)
        truth.append(blur)
        found.append(estimate_blur(estimator, fine_grid_merge(hr, blur, 90 + i)))
    error = np.abs(np.subtract(found, truth)).mean()
    constant = np.abs(np.subtract(truth, np.mean(BLURS))).mean()  # 0.3
    assert error < 0.5 * constant, (found, truth)
    assert np.corrcoef(found, truth)[0, 1] > 0.9
    # uint16 samples read the same as their float image
    image = fine_grid_merge(texture(128, 128, seed=99, fine=1.0), 0.5, 99)
    as16 = np.round(image * 65535).astype(np.uint16)
    assert estimate_blur(estimator, as16) == pytest.approx(
        estimate_blur(estimator, image), abs=1e-3
    )


def test_estimator_checkpoints_round_trip_and_bad_files_fail_cleanly(tmp_path):
    estimator = BlurEstimator(BlurEstimatorConfig(channels=8))
    save_estimator(tmp_path / "e.pt", estimator, {"val_mae": 0.1})
    again = load_estimator(tmp_path / "e.pt")
    for a, b in zip(estimator.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(CheckpointError, match="no such"):
        load_estimator(tmp_path / "missing.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_estimator(tmp_path / "bad.pt")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a burstsr blur estimator"):
        load_estimator(tmp_path / "other.pt")
    with pytest.raises(InputError, match="too small"):
        estimate_blur(estimator, np.zeros((8, 8, 3), np.float32))


def blur_model(**overrides) -> Generator:
    options = dict(scale=1, channels=8, blocks=1, unshuffle=4, confidence=True, blur_input=True)
    return Generator(GeneratorConfig(**{**options, **overrides})).eval()


def test_a_blur_reading_model_starts_as_the_model_it_grew_from():
    """``--init`` from a model without the blur input: the new channel's weights start at zero,
    so the outputs are the source's whatever blur it is given; then the blur matters."""
    torch.manual_seed(0)
    source = blur_model(blur_input=False)
    grown = blur_model()
    init_from(grown, source)
    image = texture(64, 64, seed=5)
    base = enhance_image(source, image, confidence=np.full((64, 64), 8.0, np.float32))
    for blur in (0.0, 0.9):
        out = enhance_image(grown, image, confidence=np.full((64, 64), 8.0, np.float32), blur=blur)
        np.testing.assert_allclose(out, base, atol=1e-6)
    with torch.no_grad():
        grown.head[0].weight[:, -16:] += 0.1
    sharp, soft = (enhance_image(grown, image, blur=b) for b in (0.0, 0.9))
    assert np.abs(sharp - soft).mean() > 1e-3


def test_enhance_tiles_a_blur_model_as_one_pass_and_estimates_when_not_told(tmp_path):
    torch.manual_seed(1)
    model = blur_model()
    image = texture(96, 80, seed=6)
    whole = enhance_image(model, image, blur=0.4, tile=0)
    tiled = enhance_image(model, image, blur=0.4, tile=32)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    estimator = BlurEstimator(BlurEstimatorConfig(channels=8)).eval()
    save_estimator(tmp_path / "e.pt", estimator, {})
    from burstsr.refiner import blur as blur_module

    found = estimate_blur(estimator, image)
    told = enhance_image(model, image, blur=found)
    original = blur_module.SHIPPED_ESTIMATOR
    try:
        blur_module.SHIPPED_ESTIMATOR = tmp_path / "e.pt"
        estimated = enhance_image(model, image)
    finally:
        blur_module.SHIPPED_ESTIMATOR = original
    np.testing.assert_allclose(estimated, told, atol=1e-6)


def test_training_a_blur_reading_model_and_the_command_line(tmp_path):
    make_blur_pairs(tmp_path / "pairs", blurs=[0.0, 0.5, 0.8], size=64)
    config = TrainConfig(
        pairs=str(tmp_path / "pairs"),
        out=str(tmp_path / "run"),
        blocks=1,
        channels=8,
        unshuffle=4,
        confidence=True,
        blur_input=True,
        steps=4,
        pretrain_steps=4,
        batch=2,
        patch=32,
        val_every=4,
        val_fraction=0.34,
        device="cpu",
    )
    train(config)
    model = load_generator(tmp_path / "run")
    assert model.config.blur_input and model.config.in_channels == 5
    merged = tmp_path / "pairs" / "s00" / "result.png"
    runner = CliRunner()
    out = tmp_path / "out.png"
    args = ["-q", "enhance", str(merged), "--model", str(tmp_path / "run"), "-o", str(out)]
    result = runner.invoke(cli, [*args, "--lens-blur", "0.5", "--no-route"])
    assert result.exit_code == 0, result.output
    assert out.is_file()
    # A model that does not read the blur refuses --lens-blur before any work.
    other = tmp_path / "other.png"
    result = runner.invoke(
        cli, ["-q", "enhance", str(merged), "-o", str(other), "--lens-blur", "0.5"]
    )
    assert result.exit_code == 2 and "--lens-blur" in result.output
    assert "Traceback" not in result.output and not other.exists()
    # The estimator's command: trains, writes its run; a second time into it: refused.
    est = ["-q", "train-blur", "--pairs", str(tmp_path / "pairs"), "--out", str(tmp_path / "e")]
    est += ["--steps", "3", "--batch", "2", "--patch", "32", "--val-fraction", "0.34"]
    result = runner.invoke(cli, est)
    assert result.exit_code == 0, result.output
    assert load_estimator(tmp_path / "e").config.unshuffle == 4
    result = runner.invoke(cli, est)
    assert result.exit_code == 2 and "not empty" in result.output
