"""Models that read the fine-grid merge's confidence map, and the merge kernel a model records."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from burstsr.burst.synth import simulate_burst
from burstsr.cli import cli
from burstsr.errors import InputError
from burstsr.io import read_image
from burstsr.io.confidence import read_confidence, write_confidence
from burstsr.refiner.checkpoint import load_generator, save_generator
from burstsr.refiner.enhance import enhance_image
from burstsr.refiner.networks import Generator, GeneratorConfig
from burstsr.refiner.train import TrainConfig, init_from, train

from conftest import texture, write_frames


def test_confidence_head_starts_as_the_model_it_came_from():
    torch.manual_seed(0)
    source = Generator(GeneratorConfig(scale=1, unshuffle=2, channels=8, blocks=1)).eval()
    target = Generator(
        GeneratorConfig(scale=1, unshuffle=2, channels=8, blocks=2, confidence=True)
    ).eval()
    assert init_from(target, source) == len(source.state_dict())
    x = torch.rand(1, 3, 24, 32)
    conf = torch.rand(1, 1, 24, 32)
    with torch.no_grad():
        # the confidence channel starts with zero weight: the same output, whatever it holds
        assert torch.allclose(target(torch.cat([x, conf], 1)), source(x), atol=1e-5)
        target.head[0].weight[:, -4:] += 0.1  # once trained, it does read it
        assert not torch.allclose(target(torch.cat([x, conf], 1)), source(x), atol=1e-3)


def test_tiled_enhance_passes_the_confidence_along(tmp_path):
    torch.manual_seed(1)
    g = Generator(GeneratorConfig(scale=1, unshuffle=2, channels=8, blocks=1, confidence=True))
    with torch.no_grad():
        g.head[0].weight[:, -4:] += 0.2
    image = texture(70, 90, seed=1)
    confidence = np.random.default_rng(0).uniform(0, 12, (70, 90)).astype(np.float32)
    whole = enhance_image(g, image, tile=0, confidence=confidence)
    tiled = enhance_image(g, image, tile=32, confidence=confidence)
    assert np.abs(whole - tiled).max() < 1e-4
    flat = enhance_image(g, image, tile=0)  # no map: an evenly sampled 8-frame burst
    assert np.abs(flat - whole).max() > 1e-3
    assert np.abs(flat - enhance_image(g, image, confidence=np.full((70, 90), 8.0))).max() < 1e-4
    with pytest.raises(InputError, match="differs"):
        enhance_image(g, image, confidence=confidence[:10])
    # the map round-trips through its file (16 bit, capped at 16 frames)
    write_confidence(tmp_path / "c.png", confidence)
    assert np.abs(read_confidence(tmp_path / "c.png") - confidence).max() < 1e-3


def test_synth_train_with_confidence_then_run_passes_the_map(tmp_path, monkeypatch):
    write_frames(tmp_path / "hr", [texture(128, 128, seed=s) for s in range(3)])
    res = CliRunner().invoke(
        cli,
        ["-q", "synth", str(tmp_path / "hr"), "--out", str(tmp_path / "pairs"),
         "--degradation", "mixed", "--frames", "2-4", "--merge-scale", "2", "--scale", "2"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    for scene in (tmp_path / "pairs").iterdir():
        assert read_image(scene / "confidence.png").shape == read_image(scene / "HR.png").shape
    config = TrainConfig(
        pairs=str(tmp_path / "pairs"), out=str(tmp_path / "run"), blocks=1, channels=8,
        unshuffle=2, confidence=True, steps=4, pretrain_steps=4, batch=2, patch=32,
        val_every=4, val_fraction=0.34, device="cpu",
    )  # fmt: skip
    train(config)
    meta = json.loads((tmp_path / "run" / "last.json").read_text())
    assert meta["config"]["confidence"] and meta["config"]["merge_kernel"] == "adaptive"
    # run merges with the model's kernel and hands it the merge's confidence map
    burst = simulate_burst(texture(64, 64, seed=9), frames=3, scale=2, noise=0.01, seed=2)
    write_frames(tmp_path / "b", burst.frames)
    monkeypatch.chdir(tmp_path)
    model = str(tmp_path / "run" / "last.pt")
    args = ["-q", "run", "b", "--model", model, "--keep-merge", "--back-project", "off"]
    res = CliRunner().invoke(cli, args)  # compared with merge + enhance below
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(
        cli, ["-q", "merge", "b", "-o", "m.png", "--scale", "2", "--save-confidence", "c.png"]
    )
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(
        cli, ["-q", "enhance", "m.png", "--model", model, "--confidence", "c.png", "-o", "e.png"]
    )
    assert res.exit_code == 0, res.output
    ran, enhanced = read_image(tmp_path / "result_x2.png"), read_image(tmp_path / "e.png")
    assert np.abs(ran.pixels - enhanced.pixels).max() < 2 / 255  # the same map both ways
    res = CliRunner().invoke(
        cli, ["-q", "run", "b", "--model", model, "--kernel", "gaussian", "-o", "g.png"]
    )
    assert res.exit_code == 2 and "--kernel adaptive" in res.stderr
    assert not (tmp_path / "g.png").exists()


def test_older_models_merge_with_the_gaussian_kernel(tmp_path, monkeypatch):
    g = Generator(GeneratorConfig(scale=1, unshuffle=2, channels=8, blocks=1)).eval()
    path = save_generator(tmp_path / "old.pt", g)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["config"]["merge_kernel"] == "gaussian"
    burst = simulate_burst(texture(64, 64, seed=3), frames=3, scale=2, noise=0.01, seed=2)
    write_frames(tmp_path / "b", burst.frames)
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["-q", "run", "b", "--model", str(path), "--keep-merge"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(
        cli, ["-q", "merge", "b", "-o", "g.png", "--scale", "2", "--kernel", "gaussian"]
    )
    assert res.exit_code == 0
    assert np.array_equal(
        read_image(tmp_path / "result_grid2.png").pixels, read_image(tmp_path / "g.png").pixels
    )
    assert load_generator(path).config.merge_kernel == "gaussian"


def test_merge_save_confidence_needs_the_adaptive_fine_grid(tmp_path, small_burst):
    folder, _ = small_burst
    res = CliRunner().invoke(
        cli, ["-q", "merge", str(folder), "-o", str(tmp_path / "m.png"), "--save-confidence",
              str(tmp_path / "c.png")],
    )  # fmt: skip
    assert res.exit_code == 2 and "--scale" in res.stderr
    assert not (tmp_path / "m.png").exists() and not (tmp_path / "c.png").exists()


def test_the_channel_made_tile_by_tile_is_the_whole_maps():
    """enhance encodes the confidence map for each tile it slices, not for the whole image at
    once: the same values, clipping included."""
    from burstsr.io.confidence import ConfidenceTiles, confidence_channel

    confidence = np.random.default_rng(3).uniform(-2, 30, (40, 50)).astype(np.float32)
    whole = confidence_channel(confidence)
    tile = ConfidenceTiles(confidence)[5:17, 8:40]
    assert tile.shape == (12, 32, 1) and tile.dtype == np.float32
    assert np.array_equal(tile, whole[5:17, 8:40])
    assert tile.min() == 0.0 and tile.max() == 1.0
