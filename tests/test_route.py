"""Coarse/fine detail routing in enhance (``--route``)."""

import numpy as np
import torch
from click.testing import CliRunner

from burstsr.cli import cli
from burstsr.io import read_image, write_image
from burstsr.refiner.checkpoint import save_generator
from burstsr.refiner.enhance import enhance_image
from burstsr.refiner.networks import Generator, GeneratorConfig
from burstsr.refiner.route import Routing, route_map

from conftest import texture


def _net(seed: int, **config) -> Generator:
    torch.manual_seed(seed)
    g = Generator(GeneratorConfig(**{"scale": 2, "channels": 8, "blocks": 1, **config})).eval()
    for p in g.parameters():  # small random weights: outputs near the bicubic skip
        p.data *= 0.3
    return g


def _half_flat(h: int = 96, w: int = 128) -> np.ndarray:
    """Texture on the left quarter, flat grey elsewhere."""
    image = np.full((h, w, 3), 0.5, np.float32)
    image[:, : w // 4] = texture(h, w // 4, seed=3)
    return image


def test_routing_sends_detailed_tiles_to_the_fine_model_and_flat_ones_to_the_coarse():
    fine, coarse = _net(0), _net(1, channels=4)
    image = _half_flat()
    whole = enhance_image(fine, image, tile=16)
    # Threshold 0: every tile is fine, exactly the unrouted result.
    routing = Routing(coarse, threshold=0.0)
    assert np.array_equal(enhance_image(fine, image, tile=16, routing=routing), whole)
    assert routing.fraction == 1.0
    # Threshold above every score: every tile is coarse: the coarse network's output, less
    # what repeats on its 2-pixel grid within each tile (tiles of about 40 output pixels here,
    # so the texture's own phase means move it a little).
    routing = Routing(coarse, threshold=1e9)
    only_coarse = enhance_image(fine, image, tile=16, routing=routing)
    assert routing.fraction == 0.0
    assert np.abs(only_coarse - enhance_image(coarse, image, tile=16)).mean() < 1 / 255
    # Between: the textured quarter (and its neighbours) fine, the flat far side coarse.
    routing = Routing(coarse, threshold=1e9)
    enhance_image(fine, image, tile=16, routing=routing)
    flat, busy = routing.scores[:, -1].max(), routing.scores[:, 0].min()
    assert busy > flat
    routing = Routing(coarse, threshold=(flat + busy) / 2)
    routed = enhance_image(fine, image, tile=16, routing=routing)
    assert routing.fine[:, :3].all() and not routing.fine[:, 4:].any()  # 2 textured + 1 around
    inner = (slice(0, 192), slice(0, 64))  # fine tiles away from the cross-fade to coarse ones
    assert np.array_equal(routed[inner], whole[inner])
    assert np.abs(routed[:, 160:] - only_coarse[:, 160:]).max() < 1e-5
    # No seam: across the cross-fade the routed output stays between the two.
    lo, hi = np.minimum(whole, only_coarse), np.maximum(whole, only_coarse)
    assert ((routed >= lo - 1e-5) & (routed <= hi + 1e-5)).all()


def _patches(size: int = 192) -> np.ndarray:
    """Flat grey with a little noise, and two small textured patches far apart."""
    rng = np.random.default_rng(5)
    image = (0.5 + 0.004 * rng.standard_normal((size, size, 3))).astype(np.float32)
    image[40:64, 40:64] = texture(24, 24, seed=6)
    image[140:164, 130:154] = texture(24, 24, seed=7)
    return image


def test_a_detailed_tile_runs_the_fine_model_only_in_windows_around_its_detail():
    """One tile (the whole image) holding two small textured patches in a flat field: the fine
    model runs on a window around each (with the context it needs, though a single tile
    needs none), the coarse network on the rest, cross-faded without a seam."""
    fine, coarse = _net(0), _net(1, channels=4)
    image = _patches()
    whole = enhance_image(fine, image, tile=0)
    only_coarse = enhance_image(fine, image, tile=0, routing=Routing(coarse, threshold=1e9))
    routing = Routing(coarse, threshold=20.0, cell=16, cell_margin=4, feather=2)
    routed = enhance_image(fine, image, tile=0, routing=routing)
    assert routing.fine[0, 0]
    windows = routing.windows[0, 0]
    assert len(windows) == 2
    for (y0, y1), window in zip(((40, 64), (140, 164)), windows, strict=True):
        assert window.y0 <= y0 - 4 and window.y1 >= y1 + 4  # the patch and its margin
        assert window.y1 - window.y0 <= 24 + 2 * 16 + 8  # about its cells, not the tile
    assert 0.05 < routing.fraction < 0.25
    # Inside a window, past its cross-fade: the fine model's output, as if run on the whole
    # image; far from both: the coarse network's.
    for w in windows:
        inner = (slice(2 * w.y0 + 8, 2 * w.y1 - 8), slice(2 * w.x0 + 8, 2 * w.x1 - 8))
        np.testing.assert_allclose(routed[inner], whole[inner], atol=1e-4)
    far = (slice(0, 40), slice(250, 384))
    np.testing.assert_allclose(routed[far], only_coarse[far], atol=1e-5)
    lo, hi = np.minimum(whole, only_coarse), np.maximum(whole, only_coarse)
    assert ((routed >= lo - 1e-4) & (routed <= hi + 1e-4)).all()
    # ... and at a window's edge the two are cross-faded (a blend of both), not cut.
    w = windows[0]
    edge = (slice(2 * w.y0 + 8, 2 * w.y1 - 8), slice(2 * w.x0, 2 * w.x0 + 8))
    blend = (np.abs(routed - whole)[edge] > 1e-4) & (np.abs(routed - only_coarse)[edge] > 1e-4)
    assert blend.mean() > 0.5
    # The map shows the windows at full brightness, outlined.
    picture = route_map(image, routing)
    assert picture.dtype == np.uint8 and picture.shape == image.shape
    assert (np.abs(picture[50, 50] - np.round(image[50, 50] * 255)) <= 1).all()
    assert (np.abs(picture[10, 20] - np.round(image[10, 20] * 0.3 * 255)) <= 1).all()
    assert (picture == np.array([0, 230, 255], np.uint8)).all(axis=2).any()
    assert (route_map(image, routing, band=7) == picture).all()  # the same, in bands


def test_windows_that_would_cost_most_of_the_tile_give_way_to_the_whole_tile():
    fine, coarse = _net(0), _net(1, channels=4)
    image = _patches()
    routing = Routing(coarse, threshold=20.0, cell=16, cell_margin=4, full_share=0.01)
    routed = enhance_image(fine, image, tile=0, routing=routing)
    assert routing.fine[0, 0] and not routing.windows and routing.fraction == 1.0
    assert np.array_equal(routed, enhance_image(fine, image, tile=0))


def test_enhance_cli_routes_and_draws_the_map(tmp_path):
    fine = save_generator(tmp_path / "fine.pt", _net(0))
    coarse = save_generator(tmp_path / "coarse.pt", _net(1, channels=4))
    write_image(tmp_path / "img.png", _half_flat())
    runner = CliRunner()
    base = ["enhance", str(tmp_path / "img.png"), "--model", str(fine), "--tile", "16"]
    res = runner.invoke(
        cli,
        [*base, "--route", "--coarse-model", str(coarse), "--save-route", str(tmp_path / "map.png"),
         "-o", str(tmp_path / "a.png")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "routing: deep model on" in res.stderr
    assert read_image(tmp_path / "map.png").shape == (96, 128)
    # A map needs routing; a coarse network must read and write what the model does.
    res = runner.invoke(cli, [*base, "--no-route", "--save-route", str(tmp_path / "m2.png")])
    assert res.exit_code == 2 and "--save-route" in res.stderr
    other = save_generator(tmp_path / "x4.pt", _net(1, scale=4))
    res = runner.invoke(
        cli, [*base, "--route", "--coarse-model", str(other), "-o", str(tmp_path / "b.png")]
    )
    assert res.exit_code == 2 and "--coarse-model" in res.stderr and "scale" in res.stderr
    assert not (tmp_path / "m2.png").exists() and not (tmp_path / "b.png").exists()


def test_a_pattern_locked_to_the_grid_is_taken_out_of_a_coarse_tile_and_content_is_kept():
    """What the coarse network gets: a flat tile (a night sky: a gradient, noise, a little
    texture), 258 x 262 (not whole periods), with a faint 4-pixel screen painted over it."""
    from burstsr.metrics import periodic_pattern
    from burstsr.refiner.route import remove_grid_pattern

    rng = np.random.default_rng(3)
    ys = np.linspace(0.02, 0.08, 258, dtype=np.float32)[:, None, None]
    sky = np.broadcast_to(ys, (258, 262, 3)) + 0.02 * texture(258, 262, seed=5)
    noisy = (sky + rng.normal(0, 0.01, sky.shape)).astype(np.float32)
    screen = np.tile(rng.normal(0, 0.002, (4, 4, 3)).astype(np.float32), (65, 66, 1))[:258, :262]
    cleaned = remove_grid_pattern(noisy + screen, 4)
    assert cleaned.shape == noisy.shape and cleaned.dtype == np.float32
    assert periodic_pattern(noisy + screen) > 0.3  # the screen, in 8-bit levels
    assert periodic_pattern(cleaned) < 0.05
    # The content stays (and the screen's mean, a uniform shift, not a pattern).
    assert np.abs(cleaned - (noisy + screen.mean(axis=(0, 1)))).mean() < 0.05 / 255
    # Clipped to [0, 1]; a one-channel tile works; a sliver is left as it is.
    dark = remove_grid_pattern(np.clip(noisy + screen - 0.05, 0, 1), 4)
    assert dark.min() >= 0.0 and dark.max() <= 1.0
    assert remove_grid_pattern((noisy + screen)[:, :, :1], 4).shape == (258, 262, 1)
    sliver = (noisy + screen)[:16, :40]
    assert np.array_equal(remove_grid_pattern(sliver, 4), sliver)


def test_routing_is_on_by_default_in_run_and_enhance():
    for name in ("run", "enhance"):
        (route,) = [p for p in cli.commands[name].params if p.name == "route"]
        assert route.default is True


def test_the_detail_score_of_integer_samples_is_the_converted_images_made_in_bands():
    """8- and 16-bit images are reduced band by band (no full-size float copy): the same map as
    converting the whole image first, at a grid that divides the size and one that does not."""
    from burstsr.refiner import route

    rng = np.random.default_rng(2)
    for dtype, top in ((np.uint8, 255), (np.uint16, 65535)):
        pixels = rng.integers(0, top + 1, size=(4 * 70, 4 * 45, 3)).astype(dtype)
        whole = route.detail_map(pixels.astype(np.float32) / top, 4)
        banded = route.detail_map(pixels, 4)
        assert banded.shape == whole.shape == (70, 45)
        assert np.allclose(banded, whole, rtol=1e-5, atol=1e-3)
        assert np.allclose(route._reduced(pixels, 4, band=16), route._reduced(pixels, 4))
    odd = rng.integers(0, 256, size=(4 * 20 + 3, 4 * 15 + 1, 3)).astype(np.uint8)
    assert np.allclose(route.detail_map(odd, 4), route.detail_map(odd / np.float32(255), 4))


def test_overlapping_windows_are_joined_until_none_overlap():
    from burstsr.refiner.route import _join

    # a and c are apart; b overlaps both, so all three become one box; d stays apart.
    a, b, c, d = (0, 10, 0, 10), (8, 20, 8, 30), (15, 25, 25, 40), (50, 60, 50, 60)
    assert sorted(_join([a, c, d, b])) == [(0, 25, 0, 40), d]
    # Joining one pair can make a box overlap one already passed: that is joined too.
    # (e overlaps neither f nor g, only the box around both.)
    e, f, g = (10, 15, -5, 4), (20, 30, 0, 10), (8, 25, 5, 35)
    assert _join([e, f, g]) == [(8, 30, -5, 35)]
    assert _join([a, d]) == [a, d]
