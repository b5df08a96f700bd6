"""``burstsr run`` (merge + enhance) and the shipped model."""

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from burstsr.burst.synth import simulate_burst
from burstsr.cli import cli
from burstsr.errors import CheckpointError
from burstsr.estimate import enhance_estimate
from burstsr.io import read_image, write_image
from burstsr.metrics import psnr
from burstsr.refiner.checkpoint import SHIPPED, load_generator, save_generator
from burstsr.refiner.enhance import enhance_image
from burstsr.refiner.networks import Generator, GeneratorConfig

from conftest import texture, write_frames

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def tiny_model(path: Path) -> Path:
    torch.manual_seed(0)
    return save_generator(path, Generator(GeneratorConfig(scale=2, channels=8, blocks=1)).eval())


def test_run_merges_then_enhances(tmp_path):
    burst = simulate_burst(texture(48, 64, seed=2), frames=4, scale=1, noise=0.02, seed=0)
    write_frames(tmp_path / "b", burst.frames)
    model = tiny_model(tmp_path / "m.pt")
    out = tmp_path / "out" / "final.png"
    out.parent.mkdir()
    res = CliRunner().invoke(
        cli,
        ["-q", "run", str(tmp_path / "b"), "-o", str(out), "--model", str(model), "--keep-merge",
         "--back-project", "off"],  # the merge, then the enhance alone
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    final, merged = read_image(out), read_image(tmp_path / "out" / "result.png")
    assert merged.shape == (48, 64) and final.shape == (96, 128)
    expected = enhance_image(load_generator(model), merged.pixels)
    assert np.abs(final.pixels - expected).max() < 2 / 255  # merge, then the same enhance


def test_run_merges_on_the_grid_a_folding_model_reads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    burst = simulate_burst(texture(64, 96, seed=3), frames=4, scale=2, noise=0.01, seed=1)
    write_frames(tmp_path / "b", burst.frames)  # 32 x 48 frames
    torch.manual_seed(0)
    g = Generator(GeneratorConfig(scale=1, unshuffle=2, channels=8, blocks=1)).eval()
    model = save_generator(tmp_path / "fold.pt", g)
    args = ["-q", "run", str(tmp_path / "b"), "--model", str(model), "--keep-merge"]
    res = CliRunner().invoke(cli, [*args, "--back-project", "off"])  # compared with enhance below
    assert res.exit_code == 0, res.output
    # Default names: the scale frames -> output; the kept merge names its x2 grid and notes it.
    assert read_image(Path("result_x2.png")).shape == (64, 96)
    kept = read_image(Path("result_grid2.png"))
    assert kept.shape == (64, 96) and kept.grid == 2
    assert not Path("result.png").exists()
    res = CliRunner().invoke(
        cli,
        [
            "-q",
            "run",
            str(tmp_path / "b"),
            "--model",
            str(model),
            "--scale",
            "4",
            "-o",
            str(tmp_path / "o.png"),
        ],
    )
    assert res.exit_code == 2 and "--scale" in res.stderr and "--scale 2" in res.stderr
    assert not (tmp_path / "o.png").exists()
    # enhance of the kept merge: the same image as run, under run's name (the real scale).
    Path("result_x2.png").rename("ran.png")
    res = CliRunner().invoke(cli, ["-q", "enhance", "result_grid2.png", "--model", str(model)])
    assert res.exit_code == 0, res.output
    again, ran = read_image(Path("result_x2.png")).pixels, read_image("ran.png").pixels
    assert np.abs(again - ran).max() < 2 / 255  # run enhanced the merge before its 8-bit write
    Path("result_x2.png").unlink()
    # A merge on the frames' grid is refused by a model that reads x2-grid merges, and a
    # x2-grid merge by a model that upscales: the message says what to do, nothing is written.
    res = CliRunner().invoke(cli, ["-q", "merge", str(tmp_path / "b"), "-o", "plain.png"])
    assert res.exit_code == 0 and read_image("plain.png").grid == 1
    res = CliRunner().invoke(cli, ["enhance", "plain.png", "--model", str(model), "-o", "e.png"])
    assert res.exit_code == 2 and "--model fidelity" in res.stderr, res.stderr
    upscaler = tiny_model(tmp_path / "up.pt")
    res = CliRunner().invoke(cli, ["enhance", "result_grid2.png", "--model", str(upscaler)])
    assert res.exit_code == 2 and "already 2x its frames" in res.stderr, res.stderr
    assert not Path("e.png").exists() and not Path("result_x2.png").exists()
    # A file without the note (any image): the model says which grid it expects, and runs.
    write_image(Path("other.png"), read_image("plain.png").pixels)
    res = CliRunner().invoke(cli, ["enhance", "other.png", "--model", str(model), "-o", "e.png"])
    assert res.exit_code == 0 and "merge --scale 2" in res.stderr
    assert read_image(Path("e.png")).shape == (32, 48)


def test_run_errors(tmp_path):
    write_frames(tmp_path / "b", simulate_burst(texture(32, 32), frames=2, scale=1).frames)
    res = CliRunner().invoke(
        cli, ["-q", "run", str(tmp_path / "b"), "--model", str(tmp_path / "none.pt")]
    )
    assert res.exit_code == 2 and "none.pt" in res.stderr
    # Only models whose weights ship are offered, and an unknown name says which ones are.
    assert set(SHIPPED) == {"fidelity", "burst", "gan", "anyscale"}
    res = CliRunner().invoke(cli, ["-q", "run", str(tmp_path / "b"), "--model", "esrgan"])
    assert res.exit_code == 2 and "esrgan" in res.stderr
    assert "fidelity, burst, gan, anyscale" in res.stderr
    assert "esrgan" not in CliRunner().invoke(cli, ["run", "--help"]).output


def test_run_refuses_half_on_a_cpu_without_bfloat16_before_merging(tmp_path, monkeypatch):
    from burstsr import device

    monkeypatch.setattr(device, "cpu_has_bf16", lambda: False)
    write_frames(tmp_path / "b", simulate_burst(texture(32, 32), frames=2, scale=1).frames)
    out = tmp_path / "out.png"
    res = CliRunner().invoke(
        cli, ["-q", "run", str(tmp_path / "b"), "-o", str(out), "--device", "cpu", "--half"]
    )
    assert res.exit_code != 0 and "--half: this CPU has no native bfloat16" in res.output
    assert not out.exists() and not (tmp_path / "result_grid4.png").exists()


@pytest.mark.skipif(not SHIPPED["fidelity"].is_file(), reason="no shipped model")
def test_shipped_model_is_small_and_consistent_with_its_input():
    assert SHIPPED["fidelity"].stat().st_size <= 10 * 2**20
    model = load_generator("fidelity")
    assert model.config.scale == 4
    clean = read_image(EXAMPLES / "burst_clean_reference.png").pixels[:128, :192]
    out = enhance_image(model, clean)
    assert out.shape == (512, 768, 3)
    # Area-downsampling the x4 output must give back its input: detail is added, not invented
    # over the image's content.
    back = out.reshape(128, 4, 192, 4, 3).mean(axis=(1, 3))
    assert psnr(back, clean, border=4) > 35


@pytest.mark.skipif(not SHIPPED["anyscale"].is_file(), reason="no shipped any-scale model")
def test_shipped_any_scale_model_renders_any_size_consistent_with_its_input():
    assert SHIPPED["anyscale"].stat().st_size <= 10 * 2**20
    model = load_generator("anyscale")
    assert model.config.any_scale and model.config.scale == 4
    clean = read_image(EXAMPLES / "burst_clean_reference.png").pixels[:96, :128]
    for s in (2, 3, 4):
        out = enhance_image(model, clean, size=(96 * s, 128 * s))
        assert out.shape == (96 * s, 128 * s, 3)
        # Area-downsampled, each size gives back its input: detail added, not content changed.
        back = out.reshape(96, s, 128, s, 3).mean(axis=(1, 3))
        assert psnr(back, clean, border=4) > 33, s
    assert enhance_image(model, clean, size=(333, 250)).shape == (333, 250, 3)


@pytest.mark.skipif(not SHIPPED["burst"].is_file(), reason="no shipped burst model")
def test_run_default_model_on_the_example_burst(tmp_path, monkeypatch):
    assert SHIPPED["burst"].stat().st_size <= 10 * 2**20
    model = load_generator("burst")
    assert (model.config.scale, model.config.unshuffle) == (1, 4)
    crop = (slice(64, 160), slice(96, 224))  # 96 x 128 of every frame: still a handheld burst
    frames = sorted((EXAMPLES / "burst").glob("frame_*.png"))
    write_frames(tmp_path / "b", [read_image(f).pixels[crop] for f in frames])
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["-q", "run", "b"])  # the default model
    assert res.exit_code == 0, res.output
    out = read_image(tmp_path / "result_x4.png").pixels
    assert out.shape == (384, 512, 3)
    # Area-downsampled, the x4 result gives back the clean scene, better than any one frame:
    # what it adds is consistent with what the frames saw.
    clean = read_image(EXAMPLES / "burst_clean_reference.png").pixels[crop]
    back = out.reshape(96, 4, 128, 4, 3).mean(axis=(1, 3))
    frame0 = read_image(frames[0]).pixels[crop]
    assert psnr(back, clean, border=4) > max(35, psnr(frame0, clean, border=4) + 3)


def test_every_listed_model_ships_and_loads():
    from burstsr.refiner.registry import COARSE, DEFAULT_MODEL, DEFAULT_RUN_MODEL

    assert DEFAULT_MODEL in SHIPPED and DEFAULT_RUN_MODEL in SHIPPED
    for name, path in SHIPPED.items():
        assert path.is_file(), name
        assert load_generator(name).config.scale >= 1
    # Each has a coarse network for routing, reading and writing what the model does, and
    # much smaller than it.
    for name, path in COARSE.items():
        assert path.is_file(), name
        fine, coarse = load_generator(name), load_generator(path)
        for field in ("scale", "unshuffle", "confidence"):
            assert getattr(fine.config, field) == getattr(coarse.config, field), (name, field)
        size = sum(p.numel() for p in coarse.parameters())
        assert size * 5 < sum(p.numel() for p in fine.parameters()), name


def test_strength_blends_a_models_output_with_the_one_it_started_from(tmp_path):
    start = load_generator("fidelity")
    tuned = load_generator("fidelity")
    with torch.no_grad():
        for p in tuned.parameters():
            p.add_(0.01 * torch.randn_like(p))
    save_generator(tmp_path / "tuned.pt", tuned, train_args={"init": "fidelity"})
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        outs = {s: load_generator(tmp_path / "tuned.pt", strength=s)(x) for s in (0, 0.25, 1)}
        plain = load_generator(tmp_path / "tuned.pt")(x)
        assert torch.equal(outs[0], start(x))  # 0: the starting model exactly
        assert torch.equal(outs[1], plain)
        # in between: that share of the way from the start's output to this model's
        assert torch.allclose(outs[0.25], 0.75 * start(x) + 0.25 * plain, atol=1e-6)
        assert 0 < (outs[0.25] - outs[0]).abs().mean() < (outs[0.25] - outs[1]).abs().mean()
    # Tiled, with the context the pair needs, as in one piece; twice the work of one model.
    image = np.random.default_rng(0).random((80, 72, 3), dtype=np.float32)
    dial = load_generator(tmp_path / "tuned.pt", strength=0.5)
    whole = enhance_image(dial, image, tile=0)
    assert np.abs(enhance_image(dial, image, tile=24) - whole).max() < 1e-4
    ends = [enhance_image(g, image, tile=0) for g in (start, tuned)]
    inside = (0.02 < ends[0]) & (ends[0] < 0.98) & (0.02 < ends[1]) & (ends[1] < 0.98)
    assert np.abs(whole - (ends[0] + ends[1]) / 2)[inside].max() < 1e-5
    assert sum(p.numel() for p in dial.parameters()) == 2 * sum(
        p.numel() for p in start.parameters()
    )
    # A model trained from nothing has nothing to blend with: one line, exit 2.
    save_generator(tmp_path / "alone.pt", tuned)
    res = CliRunner().invoke(
        cli,
        [
            "enhance",
            str(EXAMPLES / "burst_clean_reference.png"),
            "--model",
            str(tmp_path / "alone.pt"),
            "--strength",
            "0.5",
            "-o",
            str(tmp_path / "e.png"),
        ],
    )
    assert res.exit_code == 2 and "nothing to blend" in res.stderr
    assert not (tmp_path / "e.png").exists()
    # Nor one trained from an earlier model of its own name, which it replaced (burst and
    # fidelity record themselves): blending it with itself would only double the time.
    for model in ("burst", "fidelity"):
        with pytest.raises(CheckpointError, match="which it replaced"):
            load_generator(model, strength=0.5)


def test_strength_blends_models_of_other_sizes_but_not_of_other_inputs_or_outputs(tmp_path):
    torch.manual_seed(0)
    kind = dict(scale=1, unshuffle=4, confidence=True)
    start = Generator(GeneratorConfig(channels=8, blocks=2, **kind))
    start.train()(torch.rand(4, 4, 32, 32))  # BN statistics that are not the defaults
    save_generator(tmp_path / "start.pt", start.eval())
    grown = Generator(GeneratorConfig(channels=12, blocks=3, **kind))
    save_generator(tmp_path / "grown.pt", grown, train_args={"init": str(tmp_path / "start.pt")})
    x = torch.rand(1, 4, 24, 24)
    with torch.no_grad():
        outs = {s: load_generator(tmp_path / "grown.pt", strength=s)(x) for s in (0, 0.5, 1)}
        end = load_generator(tmp_path / "grown.pt")(x)
        assert torch.equal(outs[0], start(x)) and torch.equal(outs[1], end)
        assert torch.allclose(outs[0.5], (start(x) + end) / 2, atol=1e-6)
    # A narrower model from a wider one: the dial's memory is the wider one's; not saved as one.
    save_generator(
        tmp_path / "narrow.pt",
        Generator(GeneratorConfig(channels=4, blocks=2, **kind)),
        train_args={"init": str(tmp_path / "start.pt")},
    )
    dial = load_generator(tmp_path / "narrow.pt", strength=0.5)
    assert (
        enhance_estimate(dial, (512, 512)).peak_bytes
        == enhance_estimate(start, (512, 512)).peak_bytes
    )
    with pytest.raises(TypeError, match="two models"):
        save_generator(tmp_path / "dial.pt", dial)
    # A start that reads or writes otherwise (scale, folding, confidence, merge kernel, any
    # output size): refused.
    others = (
        dict(channels=8, blocks=2, scale=2, unshuffle=4, confidence=True),
        dict(channels=8, blocks=2, scale=1, unshuffle=2, confidence=True),
        dict(channels=8, blocks=2, scale=1, unshuffle=4, confidence=False),
        dict(channels=8, blocks=2, merge_kernel="adaptive", **kind),
    )
    for other, what in zip(others, ("scale", "unshuffle", "confidence", "kernel"), strict=True):
        save_generator(tmp_path / "other.pt", Generator(GeneratorConfig(**other)))
        save_generator(
            tmp_path / "from_other.pt", grown, train_args={"init": str(tmp_path / "other.pt")}
        )
        with pytest.raises(CheckpointError, match=f"cannot be blended.*{what}"):
            load_generator(tmp_path / "from_other.pt", strength=0.5)
    with pytest.raises(CheckpointError, match="any-scale"):  # trained from fidelity
        load_generator("anyscale", strength=0.5)


@pytest.mark.skipif(not SHIPPED["gan"].is_file(), reason="no shipped gan model")
def test_run_with_gan_at_a_strength_between_writes_the_blend_of_both_runs(tmp_path, monkeypatch):
    crop = (slice(64, 112), slice(96, 160))  # 48 x 64 of every frame of the example burst
    frames = sorted((EXAMPLES / "burst").glob("frame_*.png"))
    write_frames(tmp_path / "b", [read_image(f).pixels[crop] for f in frames])
    monkeypatch.chdir(tmp_path)
    outs = {}
    for strength in ("0", "0.25", "1"):
        args = ["-q", "run", "b", "--model", "gan", "--strength", strength, "--back-project"]
        args += ["off", "--bit-depth", "16", "--tile", "32", "-o", f"s{strength}.png"]
        res = CliRunner().invoke(cli, args)
        assert res.exit_code == 0, res.output
        outs[strength] = read_image(tmp_path / f"s{strength}.png").pixels
    ends = (outs["0"], outs["1"])
    inside = np.logical_and.reduce([(0.01 < e) & (e < 0.99) for e in ends])  # neither clipped
    blend = 0.75 * ends[0] + 0.25 * ends[1]
    assert np.abs(outs["0.25"] - blend)[inside].max() < 1e-3  # tiled, routed: the same blend
    assert np.abs(ends[0] - ends[1]).mean() > 5e-3  # and the two ends differ


def test_gan_at_strength_zero_is_burst_exactly():
    gan, burst = load_generator("gan"), load_generator("burst")
    assert gan.config == burst.config
    x = torch.rand(1, 4, 64, 64)  # RGB + confidence, on the x4 grid
    with torch.no_grad():
        assert torch.equal(load_generator("gan", strength=0.0)(x), burst(x))
        assert not torch.equal(gan(x), burst(x))
