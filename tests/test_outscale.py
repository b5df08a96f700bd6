"""``--outscale`` / ``--width``: any output size, for every model."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from burstsr.burst.synth import simulate_burst
from burstsr.cli import cli
from burstsr.errors import InputError
from burstsr.io import read_image, write_image
from burstsr.refiner.checkpoint import save_generator
from burstsr.refiner.networks import Generator, GeneratorConfig
from burstsr.refiner.outscale import output_size, resize_to

from conftest import texture, write_frames


def test_output_sizes_are_exact_and_resizing_is_faithful():
    assert output_size((300, 457), outscale=1.5) == (450, 686)
    assert output_size((300, 457), width=1000) == (656, 1000)
    assert output_size((300, 457)) is None
    with pytest.raises(InputError, match="one of them"):
        output_size((300, 457), outscale=2, width=100)
    with pytest.raises(InputError, match="--outscale 0.01"):
        output_size((300, 457), outscale=0.01)
    image = texture(64, 96)
    assert resize_to(image, (64, 96)) is image  # the model's own size: untouched
    half = resize_to(image, (32, 48))
    assert half.shape == (32, 48, 3)  # area averaging: the 2x2 block means
    assert np.allclose(half, image.reshape(32, 2, 48, 2, 3).mean(axis=(1, 3)), atol=1e-6)
    big = resize_to(image, (100, 150))
    assert big.shape == (100, 150, 3) and 0 <= big.min() and big.max() <= 1


def test_run_and_enhance_write_the_size_asked_for(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    model = save_generator(
        tmp_path / "m.pt", Generator(GeneratorConfig(scale=2, channels=8, blocks=1)).eval()
    )
    burst = simulate_burst(texture(50, 70, seed=1), frames=3, scale=1, noise=0.01, seed=0)
    write_frames(tmp_path / "b", burst.frames)  # frames of 70x50
    runner = CliRunner()
    res = runner.invoke(cli, ["-q", "run", "b", "--model", str(model), "-o", "same.png"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["-q", "run", "b", "--model", str(model), "--outscale", "2"])
    assert res.exit_code == 0, res.output  # the model's own scale: exactly its output
    assert np.array_equal(read_image("result_x2.png").pixels, read_image("same.png").pixels)
    res = runner.invoke(cli, ["-q", "run", "b", "--model", str(model), "--outscale", "1.5"])
    assert res.exit_code == 0 and read_image("result_x1.5.png").shape == (75, 105)
    res = runner.invoke(cli, ["-q", "run", "b", "--model", str(model), "--width", "333"])
    assert res.exit_code == 0 and read_image("result_333px.png").shape == (238, 333)
    write_image(tmp_path / "img.png", texture(40, 60))
    res = runner.invoke(
        cli, ["-q", "enhance", "img.png", "--model", str(model), "--outscale", "3.1"]
    )
    assert res.exit_code == 0 and read_image("img_x3.1.png").shape == (124, 186)
    res = runner.invoke(
        cli, ["enhance", "img.png", "--model", str(model), "--outscale", "2", "--width", "50"]
    )
    assert res.exit_code == 2 and "--outscale and --width" in res.stderr
