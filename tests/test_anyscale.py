"""The any-scale model: a latent field and a coordinate decoder rendering any output size."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from test_train import losses, make_pairs, tiny

from burstsr.burst.synth import simulate_burst
from burstsr.cli import cli
from burstsr.errors import InputError
from burstsr.io import read_image, write_image
from burstsr.metrics import psnr
from burstsr.refiner.anyscale import AnyScaleGenerator, output_rows, render_image
from burstsr.refiner.checkpoint import load_generator, save_generator
from burstsr.refiner.enhance import enhance_image
from burstsr.refiner.networks import Generator, GeneratorConfig, build_generator
from burstsr.refiner.train import train
from burstsr.refiner.warm_start import init_from

from conftest import texture, write_frames

CONFIG = GeneratorConfig(scale=4, channels=8, blocks=2, latent=4, decoder_width=16)


def model(seed: int = 0) -> AnyScaleGenerator:
    torch.manual_seed(seed)
    g = build_generator(CONFIG).eval()
    with torch.no_grad():  # a decoder with some output, so the tests see more than the skip
        for p in g.decoder.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return g


def test_the_config_picks_the_architecture_and_checks_its_inputs():
    assert isinstance(build_generator(CONFIG), AnyScaleGenerator)
    assert isinstance(build_generator(GeneratorConfig(channels=8, blocks=1)), Generator)
    with pytest.raises(ValueError, match="latent"):
        GeneratorConfig(latent=-1)
    with pytest.raises(ValueError, match="unshuffle"):
        AnyScaleGenerator(GeneratorConfig(latent=4, unshuffle=2))


def test_every_size_is_rendered_exactly_and_forward_is_x4():
    g = model()
    x = torch.rand(1, 3, 20, 27)
    with torch.no_grad():
        for size in [(20, 27), (13, 17), (30, 41), (57, 77), (160, 216)]:
            assert g.render(x, size).shape == (1, 3, *size)
        assert torch.equal(g(x), g.render(x, (80, 108)))


def test_output_rows_share_the_output_among_tiles():
    for inputs, outputs, tile in [(27, 41, 8), (20, 80, 7), (33, 17, 5), (10, 150, 3)]:
        owned = []
        for start in range(0, inputs, tile):
            first, last = output_rows(inputs, outputs, start, min(start + tile, inputs))
            owned += list(range(first, last))
        assert owned == list(range(outputs))  # every output row once, in order


@pytest.mark.parametrize("size", [(61, 83), (96, 128), (150, 205)])
def test_tiles_render_the_same_image_as_one_pass(size):
    g = model()
    image = texture(24, 32, seed=3)
    whole = render_image(g, image, size, tile=0)
    tiled = render_image(g, image, size, tile=7)
    assert whole.shape == (*size, 3)
    np.testing.assert_allclose(tiled, whole, atol=2e-6)
    # In 8-bit integers from 8-bit input, as enhance writes them.
    ints = (image * 255).round().astype(np.uint8)
    out = np.empty((*size, 3), np.uint8)
    render_image(g, ints, size, tile=9, out=out)
    assert np.abs(out.astype(int) - np.rint(render_image(g, ints, size, tile=0) * 255)).max() <= 1


def test_enhance_at_x4_is_the_render_and_other_sizes_go_through_it():
    g = model()
    image = texture(24, 32, seed=4)
    x4 = enhance_image(g, image, tile=10)
    np.testing.assert_allclose(x4, render_image(g, image, (96, 128), tile=0), atol=2e-6)
    odd = enhance_image(g, image, size=(50, 70))
    assert odd.shape == (50, 70, 3)
    with pytest.raises(InputError, match="--ensemble"):
        enhance_image(g, image, size=(50, 70), ensemble=True)
    with pytest.raises(InputError, match="--sample"):
        enhance_image(Generator(GeneratorConfig(channels=8, blocks=1)), image, seed=1)


def test_samples_are_reproducible_differ_by_seed_and_tile_exactly():
    g = model()
    with torch.no_grad():
        g.logvar.bias.fill_(0.0)  # a wide latent, so draws differ visibly
    image = texture(20, 24, seed=5)
    mean = render_image(g, image, (50, 60))
    one = render_image(g, image, (50, 60), seed=1)
    assert np.array_equal(one, render_image(g, image, (50, 60), seed=1))
    other = render_image(g, image, (50, 60), seed=2)
    assert np.abs(one - other).mean() > 1e-3 and np.abs(one - mean).mean() > 1e-3
    np.testing.assert_allclose(render_image(g, image, (50, 60), seed=1, tile=6), one, atol=2e-6)


def test_the_encoder_starts_from_a_fixed_scale_model():
    torch.manual_seed(1)
    source = Generator(GeneratorConfig(scale=4, channels=8, blocks=2)).eval()
    g = build_generator(CONFIG).eval()
    taken = init_from(g, source)
    assert taken == len([k for k in source.state_dict() if k.startswith(("head", "body"))])
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        features = source.head(x)
        features = features + source.body_tail(source.body(features))
        ours = g.head(x)
        ours = ours + g.body_tail(g.body(ours))
    assert torch.equal(features, ours)


def test_training_renders_many_scales_and_round_trips(tmp_path):
    make_pairs(tmp_path / "pairs", count=3, size=64, scale=4)
    config = tiny(
        tmp_path,
        blocks=1,
        latent=4,
        queries=256,
        steps=60,
        pretrain_steps=60,
        val_every=30,
        lr=3e-3,
        lr_step=1000,
    )
    train(config)
    pixel = [e["loss_pixel"] for e in losses(tmp_path / "run")]
    assert np.mean(pixel[-10:]) < np.mean(pixel[:10])
    meta = json.loads((tmp_path / "run" / "best.json").read_text())
    assert meta["config"]["latent"] == 4 and meta["train_args"]["queries"] == 256
    g = load_generator(tmp_path / "run")
    assert isinstance(g, AnyScaleGenerator)
    lr = read_image(tmp_path / "pairs" / "s0" / "result.png").pixels
    hr = read_image(tmp_path / "pairs" / "s0" / "HR.png").pixels
    # The trained model beats its own untrained start at x4.
    start = build_generator(g.config).eval()
    assert psnr(enhance_image(g, lr), hr, border=4) > psnr(enhance_image(start, lr), hr, border=4)


def test_training_refuses_what_an_any_scale_model_cannot_do(tmp_path):
    make_pairs(tmp_path / "pairs", count=2, size=32, scale=4)
    base = ["train", "--pairs", str(tmp_path / "pairs"), "--latent", "4", "--device", "cpu"]
    runner = CliRunner()
    res = runner.invoke(cli, [*base, "--out", str(tmp_path / "a"), "--unshuffle", "2"])
    assert res.exit_code != 0 and "--latent" in res.output and "Traceback" not in res.output
    res = runner.invoke(
        cli, [*base, "--out", str(tmp_path / "b"), "--steps", "4", "--pretrain-steps", "2"]
    )
    assert res.exit_code != 0 and "--pretrain-steps" in res.output
    grid = ["--steps", "4", "--pretrain-steps", "4", "--grid-weight", "1"]
    res = runner.invoke(cli, [*base, "--out", str(tmp_path / "c"), *grid])
    assert res.exit_code != 0 and "--grid-weight" in res.output and "Traceback" not in res.output


def test_enhance_renders_any_size_and_sample_needs_an_any_scale_model(tmp_path):
    ckpt = save_generator(tmp_path / "any.pt", model())
    fixed = save_generator(
        tmp_path / "fixed.pt", Generator(GeneratorConfig(scale=4, channels=8, blocks=1))
    )
    write_image(tmp_path / "in.png", texture(30, 40, seed=6))
    runner = CliRunner()
    for option, value, size in [("--outscale", "2.5", (75, 100)), ("--width", "333", (250, 333))]:
        out = tmp_path / f"out{option}.png"
        args = ["-q", "enhance", str(tmp_path / "in.png"), "--model", str(ckpt), option, value]
        res = runner.invoke(cli, [*args, "-o", str(out), "--no-route"])
        assert res.exit_code == 0, res.output
        assert read_image(out).pixels.shape == (*size, 3)
    args = ["-q", "enhance", str(tmp_path / "in.png"), "--outscale", "3"]
    one, two = tmp_path / "s1.png", tmp_path / "s2.png"
    for seed, out in (("1", one), ("1", two)):
        res = runner.invoke(cli, [*args, "--model", str(ckpt), "--sample", seed, "-o", str(out)])
        assert res.exit_code == 0, res.output
    assert np.array_equal(read_image(one).pixels, read_image(two).pixels)
    bad = tmp_path / "bad.png"
    res = runner.invoke(cli, [*args, "--model", str(fixed), "--sample", "1", "-o", str(bad)])
    assert res.exit_code != 0 and "--sample" in res.output and not bad.exists()
    # The size limit counts the size rendered (x16: 0.31 MP), not the model's own (x4: 0.02 MP).
    base = ["-q", "enhance", str(tmp_path / "in.png"), "--model", str(ckpt), "-o", str(bad)]
    res = runner.invoke(cli, [*base, "--outscale", "16", "--max-output-mp", "0.1"])
    assert res.exit_code != 0 and "640x480" in res.output and not bad.exists()


def test_inspect_shows_the_latent_field(tmp_path):
    from burstsr.refiner.inspect import activations, layer_names

    g = model()
    assert layer_names(g)[-2:] == ["mean", "logvar"]
    found, out = activations(g, texture(16, 20, seed=7))
    assert [a.name for a in found] == layer_names(g)
    assert found[-1].maps.shape == (CONFIG.latent, 16, 20) and out.shape == (64, 80, 3)


def test_run_renders_the_burst_at_the_size_asked_for(tmp_path, monkeypatch):
    ckpt = save_generator(tmp_path / "any.pt", model())
    burst = simulate_burst(texture(40, 56, seed=8), frames=3, scale=1, noise=0.01, seed=0)
    write_frames(tmp_path / "b", burst.frames)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    res = runner.invoke(cli, ["-q", "run", "b", "--model", str(ckpt), "--outscale", "2.5"])
    assert res.exit_code == 0, res.output
    assert read_image(tmp_path / "result_x2.5.png").pixels.shape == (100, 140, 3)
    res = runner.invoke(cli, ["-q", "run", "b", "--model", str(ckpt), "--sample", "4"])
    assert res.exit_code == 0, res.output
    assert read_image(tmp_path / "result_x4.png").pixels.shape == (160, 224, 3)
