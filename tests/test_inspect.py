"""``burstsr inspect``: the refiner's per-layer activations as a picture."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from burstsr.burst.synth import simulate_burst
from burstsr.cli import cli
from burstsr.errors import InputError
from burstsr.io import read_image, write_image
from burstsr.refiner.checkpoint import save_generator
from burstsr.refiner.inspect import (
    CAPTION,
    CELL,
    COLUMNS,
    activation_figure,
    activations,
    layer_names,
)
from burstsr.refiner.networks import Generator, GeneratorConfig

from conftest import texture, write_frames


def _generator(**config) -> Generator:
    torch.manual_seed(0)
    return Generator(GeneratorConfig(**{"scale": 2, "channels": 8, "blocks": 2, **config})).eval()


def _height(blocks: int, channels: int, shown: int, panels: int = 2) -> int:
    """The picture's height: caption + panel row, then per layer a caption and its grid."""
    rows = -(-min(channels, shown) // COLUMNS)
    return CAPTION + (COLUMNS * CELL) // panels + blocks * (CAPTION + rows * CELL)


def test_activations_follow_the_data_through_the_layers():
    g = _generator()
    assert layer_names(g) == ["head", "body.0", "body.1", "body_tail", "upsample.2", "tail"]
    image = texture(24, 32)
    acts, out = activations(g, image)
    shapes = {a.name: a.maps.shape for a in acts}
    assert shapes["head"] == shapes["body_tail"] == (8, 24, 32)
    assert shapes["upsample.2"] == (8, 48, 64) and shapes["tail"] == (3, 48, 64)
    with torch.no_grad():
        expected = g(torch.from_numpy(image).permute(2, 0, 1)[None])[0].clamp(0, 1)
    assert np.allclose(out, expected.permute(1, 2, 0).numpy(), atol=1e-6)
    with pytest.raises(InputError, match="body.7"):
        activations(g, image, layers=["head", "body.7"])
    # A folding model that reads the confidence map: layers at the folded size.
    folding = _generator(scale=1, unshuffle=2, confidence=True)
    acts, out = activations(folding, texture(24, 32), layers=["head", "tail"])
    assert acts[0].maps.shape == (8, 12, 16) and out.shape == (24, 32, 3)


def test_the_figure_has_one_block_per_layer_in_order():
    g = _generator()
    acts, out = activations(g, texture(24, 32))
    picture, layout = activation_figure(acts, [("in", texture(24, 32)), ("out", out)], channels=4)
    assert [name for name, _, _ in layout] == layer_names(g)
    assert picture.shape == (_height(6, 8, 4), COLUMNS * CELL, 3)
    for (_, _, end), (_, start, _) in zip(layout, layout[1:], strict=False):
        assert end == start  # blocks follow one another


def test_inspect_cli_on_an_image_and_on_a_burst(tmp_path):
    model = save_generator(tmp_path / "m.pt", _generator())
    write_image(tmp_path / "img.png", texture(40, 56))
    runner = CliRunner()
    out = tmp_path / "a.png"
    args = ["-q", "inspect", str(tmp_path / "img.png"), "--model", str(model), "-o", str(out)]
    res = runner.invoke(cli, [*args, "--layers", "head,tail", "--crop", "0,0,32,24"])
    assert res.exit_code == 0, res.output
    # input, output, detail score: 3 panels
    assert read_image(out).shape == (_height(2, 8, 16, panels=3), COLUMNS * CELL)
    res = runner.invoke(cli, [*args, "--layers", "head,nope", "--overwrite"])
    assert res.exit_code == 2 and "nope" in res.stderr and "Traceback" not in res.stderr
    res = runner.invoke(cli, args)
    assert res.exit_code == 2 and "already exists" in res.stderr
    # A burst: merged as run merges it for this folding, confidence-reading model.
    folding = _generator(scale=1, unshuffle=2, confidence=True, merge_kernel="adaptive")
    folding = save_generator(tmp_path / "f.pt", folding)
    burst = simulate_burst(texture(64, 96, seed=2), frames=3, scale=2, noise=0.01, seed=1)
    write_frames(tmp_path / "b", burst.frames)
    out = tmp_path / "b.png"
    res = runner.invoke(
        cli, ["-q", "inspect", str(tmp_path / "b"), "--model", str(folding), "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    layers = len(layer_names(_generator(blocks=2)))
    assert read_image(out).shape[0] == _height(layers, 8, 16, panels=4)  # and the confidence
