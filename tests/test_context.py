"""The context a tile needs (``burstsr.refiner.context``): measured, not assumed."""

import numpy as np
import torch

from burstsr.refiner.context import measure_context, needed_context
from burstsr.refiner.enhance import enhance_image, tile_plan
from burstsr.refiner.networks import Generator, GeneratorConfig

from conftest import texture


def _net(reach: float, **config) -> Generator:
    """A small random generator whose blocks pass on ``reach`` of what they see: the larger,
    the further an output pixel's input reaches."""
    torch.manual_seed(0)
    g = Generator(GeneratorConfig(**{"scale": 2, "channels": 8, "blocks": 6, **config})).eval()
    with torch.no_grad():
        for block in g.body:
            for m in block.body:
                if isinstance(m, torch.nn.Conv2d):
                    m.weight.mul_(reach)
    return g


def test_a_model_that_sees_further_gets_more_context_and_its_tiles_match_the_whole_image():
    near, far = _net(0.2), _net(1.5)
    (c_near, e_near), (c_far, e_far) = measure_context(near), measure_context(far)
    assert c_near < c_far <= far.receptive_radius()
    assert e_near <= 1e-5 and e_far <= 1e-5
    image = texture(96, 120, seed=5)
    for g in (near, far):
        whole = enhance_image(g, image, tile=0)
        tiled = enhance_image(g, image, tile=24)  # the default context
        assert np.abs(tiled - whole).max() <= 2e-5
    # A little less context than measured shows: the measure is not loose.
    short = enhance_image(far, image, tile=24, tile_pad=c_far - 2)
    assert np.abs(short - enhance_image(far, image, tile=0)).max() > 1e-5


def test_a_folding_model_gets_whole_blocks_and_the_receptive_radius_at_most():
    g = _net(1.0, scale=1, unshuffle=4, confidence=True)
    context = needed_context(g)
    assert context % 4 == 0 and 0 < context <= -(-g.receptive_radius() // 4) * 4


def test_tiny_tiles_still_get_context_and_models_made_in_inference_mode_can_be_tiled():
    g = _net(1.5)
    assert tile_plan(g, 100, 100, 3, None)[2] == needed_context(g) > 0  # many 3 px tiles
    assert tile_plan(g, 100, 100, 0, None)[2] == 0  # one tile
    with torch.inference_mode():
        made = _net(1.5)
        image = texture(40, 48, seed=1)
        tiled = enhance_image(made, image, tile=16)
        assert np.abs(tiled - enhance_image(made, image, tile=0)).max() <= 2e-5
    was = made.train()
    measure_context(was)
    assert was.training  # left in the mode it was in


def test_the_context_is_measured_again_when_the_weights_change():
    g = _net(0.2)
    first = needed_context(g)
    assert needed_context(g) == first  # remembered
    with torch.no_grad():  # an optimiser step would do the same, in place
        for block in g.body:
            for m in block.body:
                if isinstance(m, torch.nn.Conv2d):
                    m.weight.mul_(7.5)
    assert needed_context(g) > first
