"""The refiner's parts: networks, checkpoints, tiled inference, pairs."""

import dataclasses

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from burstsr.cli import cli
from burstsr.errors import CheckpointError, InputError
from burstsr.io import write_image
from burstsr.refiner.checkpoint import load_generator, save_generator
from burstsr.refiner.data import PairDataset, find_pairs
from burstsr.refiner.enhance import enhance_image, inference_network
from burstsr.refiner.networks import (
    Discriminator,
    DiscriminatorConfig,
    Generator,
    GeneratorConfig,
    fold_batch_norm,
    fold_output_conv,
)

from conftest import texture

TINY = dict(channels=8, blocks=2)


@pytest.mark.parametrize("scale", [1, 2, 3, 4, 8])
def test_generator_output_shape(scale):
    g = Generator(GeneratorConfig(scale=scale, **TINY)).eval()
    out = g(torch.rand(2, 3, 12, 10))
    assert out.shape == (2, 3, 12 * scale, 10 * scale)


@pytest.mark.parametrize(("scale", "unshuffle"), [(1, 2), (1, 4), (2, 2), (3, 2)])
def test_folded_generator_output_shape_any_size(scale, unshuffle):
    g = Generator(GeneratorConfig(scale=scale, unshuffle=unshuffle, **TINY)).eval()
    for h, w in [(16, 24), (13, 10)]:  # sizes that are not whole blocks are padded, then cropped
        assert g(torch.rand(1, 3, h, w)).shape == (1, 3, h * scale, w * scale)


@pytest.mark.parametrize(("scale", "unshuffle", "head"), [(4, 1, 3), (2, 2, 5), (1, 4, 9)])
def test_a_subpixel_generator_has_nothing_at_the_output_size_and_tiles_exactly(
    scale, unshuffle, head
):
    torch.manual_seed(0)
    config = GeneratorConfig(scale=scale, unshuffle=unshuffle, head_kernel=head, **TINY)
    g = Generator(dataclasses.replace(config, upsampler="subpixel")).eval()
    f = scale * unshuffle  # one conv to 3 x f x f channels at the body's size, one shuffle
    assert len(g.upsample) == 0 and g.tail[0].out_channels == 3 * f * f
    assert isinstance(g.tail[1], torch.nn.PixelShuffle) and g.tail[1].upscale_factor == f
    image = texture(40, 56, seed=2)
    whole = enhance_image(g, image, tile=0)
    assert whole.shape == (40 * scale, 56 * scale, 3)
    # The receptive radius it reports is what it sees: tiles with that context are exact.
    tiled = enhance_image(g, image, tile=8 * unshuffle, tile_pad=g.receptive_radius())
    assert np.abs(tiled - whole).max() < 1e-5
    with pytest.raises(ValueError, match="upsampler"):
        GeneratorConfig(upsampler="bilinear")
    with pytest.raises(ValueError, match="head_kernel"):
        GeneratorConfig(head_kernel=4)


def test_generator_without_batch_norm_has_none():
    g = Generator(GeneratorConfig(scale=2, batch_norm=False, **TINY))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in g.modules())


@pytest.mark.parametrize("size", [32, 96])
def test_discriminator_any_patch_size(size):
    d = Discriminator(DiscriminatorConfig(channels=8, dense=16))
    assert d(torch.rand(3, 3, size, size)).shape == (3, 1)


def _trained_generator(scale=2, seed=0, unshuffle=1):
    torch.manual_seed(seed)
    g = Generator(GeneratorConfig(scale=scale, unshuffle=unshuffle, **TINY))
    g.train()
    for _ in range(3):  # give the batch-norm statistics some non-default values
        g(torch.rand(4, 3, 16, 16))
    return g.eval()


def test_save_then_load_gives_identical_outputs(tmp_path):
    g = _trained_generator()
    x = torch.rand(1, 3, 20, 24)
    path = save_generator(tmp_path / "m.pt", g, train_args={"steps": 3})
    loaded = load_generator(path)
    with torch.inference_mode():
        assert torch.equal(g(x), loaded(x))
    assert loaded.config == g.config
    assert (tmp_path / "m.json").is_file()


def test_bad_checkpoints(tmp_path):
    g = _trained_generator()
    path = save_generator(tmp_path / "m.pt", g)
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_generator(tmp_path / "cut.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_generator(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="x2.*x4"):
        load_generator(path, scale=4)
    with pytest.raises(CheckpointError, match="no such"):
        load_generator(tmp_path / "missing.pt")
    torch.save(
        {
            "format": "burstsr-generator",
            "version": 1,
            "state_dict": g.state_dict(),
            "config": {**g.config.to_dict(), "blocks": 3},
        },
        tmp_path / "other.pt",
    )
    with pytest.raises(CheckpointError, match="do not match"):
        load_generator(tmp_path / "other.pt")


def test_checkpoint_loading_never_unpickles_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    torch.save({"format": "burstsr-generator", "evil": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_generator(tmp_path / "evil.pt")


def test_tiled_enhance_equals_whole_image():
    g = _trained_generator(scale=2)
    image = texture(100, 130, seed=4)
    whole = enhance_image(g, image, tile=0)
    tiled = enhance_image(g, image, tile=32)  # 4 x 5 tiles
    assert whole.shape == (200, 260, 3)
    assert np.abs(whole - tiled).max() < 1 / 255


def test_tiled_enhance_of_a_folding_model_equals_whole_image():
    g = _trained_generator(scale=1, unshuffle=4)
    image = texture(101, 139, seed=6)  # not whole 4 x 4 blocks
    whole = enhance_image(g, image, tile=0)
    tiled = enhance_image(g, image, tile=30)  # rounded up to 32: tiles fold as the whole does
    assert whole.shape == (101, 139, 3)
    assert np.abs(whole - tiled).max() < 1 / 255


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_enhance_writes_into_an_output_array_band_by_band(dtype):
    g = _trained_generator(scale=2)
    image = texture(100, 130, seed=4)
    reference = enhance_image(g, image, tile=32)  # float, 4 x 5 tiles: 4 bands
    out = np.full((200, 260, 3), 7, dtype)
    assert enhance_image(g, image, tile=32, out=out) is out
    if dtype == np.float32:
        assert np.array_equal(out, reference)
    else:
        peak = np.iinfo(dtype).max
        assert np.array_equal(out, np.rint(reference * np.float32(peak)).astype(dtype))
    with pytest.raises(ValueError, match="out"):
        enhance_image(g, image, tile=32, out=np.empty((200, 261, 3), dtype))


def test_enhance_file_writes_what_the_model_made(tmp_path):
    g = _trained_generator(scale=2)
    image = texture(40, 52, seed=2)
    write_image(tmp_path / "in.png", image, bit_depth=16)
    from burstsr.io import read_image
    from burstsr.refiner.enhance import enhance_file

    enhance_file(g, tmp_path / "in.png", tmp_path / "out.png", tile=16)
    written = read_image(tmp_path / "out.png")
    assert written.bit_depth == 16
    expected = enhance_image(g, read_image(tmp_path / "in.png").pixels, tile=16)
    assert np.abs(written.pixels - expected).max() <= 0.5 / 65535 + 1e-7


@pytest.mark.parametrize(("scale", "unshuffle"), [(1, 1), (2, 1), (3, 1), (1, 4), (2, 2)])
def test_the_full_resolution_end_runs_in_strips_with_the_same_result(monkeypatch, scale, unshuffle):
    import burstsr.refiner.networks as networks

    torch.manual_seed(0)
    g = Generator(GeneratorConfig(scale=scale, unshuffle=unshuffle, **TINY)).eval()
    x = torch.rand(1, 3, 44, 36)
    with torch.inference_mode():
        whole = g(x)
        monkeypatch.setattr(networks, "UNFOLD_PIXELS", 300)  # strips of a row or two
        strips = g(x)
    assert strips.shape == whole.shape
    assert torch.allclose(strips, whole, atol=1e-5)


@pytest.mark.parametrize(("f", "k"), [(2, 9), (3, 9), (2, 3), (4, 5)])
def test_an_output_conv_folded_before_the_pixel_shuffle_gives_the_same_image(f, k):
    torch.manual_seed(0)
    x = torch.randn(2, 5 * f * f, 7, 6)
    weight, bias = torch.randn(3, 5, k, k), torch.randn(3)
    after = F.conv2d(F.pixel_shuffle(x, f), weight, bias, padding=k // 2)
    folded, folded_bias, pad = fold_output_conv(weight, bias, f)
    before = F.pixel_shuffle(F.conv2d(x, folded, folded_bias, padding=pad), f)
    assert before.shape == after.shape
    assert torch.allclose(before, after, atol=1e-4)


@pytest.mark.parametrize(("scale", "unshuffle"), [(4, 1), (3, 1), (1, 4), (2, 2)])
def test_the_folded_end_equals_the_layers_it_stands_for_and_trains_alike(scale, unshuffle):
    torch.manual_seed(0)
    g = Generator(GeneratorConfig(scale=scale, unshuffle=unshuffle, **TINY))
    torch.nn.init.uniform_(g.upsample[-1].weight, -0.5, 0.5)  # a slope per channel, all unlike
    features = torch.randn(2, TINY["channels"], 10, 9)
    plain = g.tail(g.upsample(features))
    folded = g._render(features)
    assert torch.allclose(folded, plain, atol=1e-5)
    # The same gradients reach every weight.
    grads = []
    for out in (plain, folded):
        g.zero_grad()
        (out * torch.linspace(-1, 1, out.shape[-1])).sum().backward()
        grads.append([p.grad.clone() for p in g.parameters() if p.grad is not None])
    assert len(grads[0]) == len(grads[1]) > 0
    for a, b in zip(*grads, strict=True):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)
    # A hook on those layers (burstsr inspect) makes the generator run them as they are.
    seen = []
    hook = g.upsample[-1].register_forward_hook(lambda m, i, o: seen.append(o.shape))
    with torch.inference_mode():
        g.eval()(torch.rand(1, 3, 12, 8))
    hook.remove()
    assert len(seen) == 1


def test_init_from_spreads_an_unfolded_head_over_the_folded_channels():
    from burstsr.refiner.train import init_from

    source = _trained_generator(scale=4)
    folded = Generator(GeneratorConfig(scale=1, unshuffle=4, **TINY)).eval()
    assert init_from(folded, source) == len(source.state_dict())  # every tensor fits or spreads
    for name, weight in source.state_dict().items():  # the body is copied as it is
        if name.startswith("body"):
            assert torch.equal(folded.state_dict()[name], weight)
    # On an image made of constant 4 x 4 blocks the folded head sees what the source saw.
    lr = torch.rand(1, 3, 10, 12)
    fine = torch.nn.functional.interpolate(lr, scale_factor=4, mode="nearest")
    with torch.inference_mode():
        assert torch.allclose(folded.head(folded.fold(fine)), source.head(lr), atol=1e-5)


@pytest.mark.parametrize("batch_norm", [True, False])
def test_init_from_a_shallower_model_starts_with_identity_blocks_that_still_learn(batch_norm):
    from burstsr.refiner.train import init_from

    torch.manual_seed(0)
    source = Generator(GeneratorConfig(scale=2, channels=8, blocks=2, batch_norm=batch_norm))
    deeper = Generator(GeneratorConfig(scale=2, channels=8, blocks=5, batch_norm=batch_norm))
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        assert not torch.allclose(deeper.eval()(x), source.eval()(x), atol=1e-4)
    init_from(deeper, source)
    with torch.no_grad():
        assert torch.allclose(deeper.eval()(x), source.eval()(x), atol=1e-6)
    # The zeroed layer of each new block gets a gradient, so the new blocks do train.
    deeper.train()
    (deeper(x) - x.repeat_interleave(2, -1).repeat_interleave(2, -2)).abs().mean().backward()
    for block in list(deeper.body)[2:]:
        last = block.body[-1] if batch_norm else block.body[-2]
        assert last.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("batch_norm", [True, False])
def test_init_from_a_narrower_model_computes_the_same_and_its_new_channels_learn(batch_norm):
    from burstsr.refiner.train import init_from

    torch.manual_seed(0)
    kind = dict(scale=1, unshuffle=4, confidence=True, batch_norm=batch_norm)
    source = Generator(GeneratorConfig(channels=8, blocks=2, **kind))
    source.train()(torch.rand(4, 4, 32, 32))  # BN statistics that are not the defaults
    wider = Generator(GeneratorConfig(channels=12, blocks=3, **kind))
    assert init_from(wider, source) == len(source.state_dict())  # every tensor fits or widens
    x = torch.rand(2, 4, 24, 32)
    with torch.no_grad():
        assert torch.allclose(wider.eval()(x), source.eval()(x), atol=1e-6)
        assert torch.allclose(wider.train()(x), source.train()(x), atol=1e-5)  # batch statistics
    # The new channels hold something, and the zeroed weights that read them get gradients.
    wider.train()
    with torch.no_grad():
        assert wider.head(wider.fold(x))[:, 8:].abs().mean() > 1e-3
    (wider(x) - x[:, :3]).abs().mean().backward()
    for conv in (wider.body[0].body[0], wider.body_tail[0], wider.upsample[0], wider.tail):
        assert conv.weight.grad[:, 8:].abs().sum() > 0
    # A different upsampling (x2 -> x3: 4 C -> 9 C outputs) is not taken as a wider one.
    x2 = Generator(GeneratorConfig(scale=2, channels=8, blocks=1))
    x3 = Generator(GeneratorConfig(scale=3, channels=12, blocks=1))
    fresh = x3.upsample[0].weight.detach().clone()
    init_from(x3, x2)
    assert torch.equal(x3.upsample[0].weight, fresh)


def test_pair_crops_of_a_folding_model_start_on_whole_blocks(tmp_path):
    pairs = find_pairs(_pairs(tmp_path, (1, 1), size=64))
    data = PairDataset(pairs.pairs, 1, 24, augment=False, align=4)
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        merged, hr = data.batch(1, gen)
        found = [
            (y, x)
            for y in range(0, 41)
            for x in range(0, 41)
            if any(torch.equal(merged[0], m[:, y : y + 24, x : x + 24]) for m in data.merged)
        ]
        assert found and all(y % 4 == 0 and x % 4 == 0 for y, x in found)
    with pytest.raises(InputError, match="multiple of 4"):
        PairDataset(pairs.pairs, 1, 22, align=4)


@pytest.mark.parametrize(("scale", "unshuffle"), [(2, 1), (1, 4)])
def test_ensemble_makes_enhance_equivariant_and_tiles_still_agree(scale, unshuffle):
    g = _trained_generator(scale=scale, unshuffle=unshuffle)
    image = texture(64, 80, seed=7)
    plain = enhance_image(g, image, tile=0)
    flipped_plain = enhance_image(g, image[:, ::-1], tile=0)[:, ::-1]
    assert np.abs(plain - flipped_plain).max() > 1e-3  # a random network is not flip-symmetric
    ens = enhance_image(g, image, tile=0, ensemble=True)
    for turned, undo in [
        (image[:, ::-1], lambda x: x[:, ::-1]),
        (np.rot90(image), lambda x: np.rot90(x, -1)),
    ]:
        other = undo(enhance_image(g, np.ascontiguousarray(turned), tile=0, ensemble=True))
        assert np.abs(ens - other).max() < 1e-4
    tiled = enhance_image(g, image, tile=32, ensemble=True)
    assert np.abs(ens - tiled).max() < 1 / 255


def test_tiled_enhance_blends_seams_when_context_is_short():
    g = _trained_generator(scale=2)
    image = texture(64, 64, seed=5)
    whole = enhance_image(g, image, tile=0)
    short = enhance_image(g, image, tile=16, tile_pad=2)  # cross-fades of 4 px
    assert np.abs(whole - short).mean() < 0.02  # no seams standing out


def _pairs(tmp_path, scales=(2, 2), size=64):
    root = tmp_path / "pairs"
    for i, s in enumerate(scales):
        scene = root / f"scene{i}"
        scene.mkdir(parents=True)
        hr = texture(size, size, seed=i)
        write_image(scene / "HR.png", hr)
        write_image(scene / "result.png", hr.reshape(size // s, s, size // s, s, 3).mean((1, 3)))
    return root


def test_pairs_scale_is_inferred(tmp_path):
    found = find_pairs(_pairs(tmp_path, (2, 2, 2)))
    assert found.scale == 2 and [p.scene for p in found.pairs] == ["scene0", "scene1", "scene2"]
    data = PairDataset(found.pairs, 2, 32)
    lr, hr = data.batch(5, torch.Generator().manual_seed(0))
    assert lr.shape == (5, 3, 16, 16) and hr.shape == (5, 3, 32, 32)
    # Crops stay aligned through flips and turns: downsampling the HR crop gives the LR crop.
    assert (torch.nn.functional.avg_pool2d(hr, 2) - lr).abs().max() < 1.01 / 255


def test_pairs_errors(tmp_path):
    with pytest.raises(InputError, match="no scenes"):
        (tmp_path / "empty").mkdir()
        find_pairs(tmp_path / "empty")
    with pytest.raises(InputError, match="scene1.*differs"):
        find_pairs(_pairs(tmp_path / "a", (2, 4)))
    root = _pairs(tmp_path / "b", (2,))
    write_image(root / "scene0" / "HR.png", texture(50, 64))
    with pytest.raises(InputError, match="scene0.*integer multiple"):
        find_pairs(root)
    (root / "scene0" / "HR.png").unlink()
    with pytest.raises(InputError, match="scene0: missing HR.png"):
        find_pairs(root)
    found = find_pairs(_pairs(tmp_path / "c", (2,)))
    with pytest.raises(InputError, match="--patch 128"):
        PairDataset(found.pairs, 2, 128)


def test_enhance_cli_folder_in_folder_out(tmp_path):
    g = _trained_generator(scale=2)
    save_generator(tmp_path / "m.pt", g)
    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        write_image(src / f"im{i}.png", texture(40, 48, seed=i))
    res = CliRunner().invoke(
        cli,
        [
            "-q",
            "enhance",
            str(src),
            "-o",
            str(tmp_path / "out"),
            "--model",
            str(tmp_path / "m.pt"),
            "--tile",
            "16",
        ],
    )
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["im0_x2.png", "im1_x2.png"]


def test_texture_ratio_tells_smooth_from_detailed():
    from burstsr.metrics import texture_ratio

    hr = texture(64, 64, seed=9)
    smooth = cv2.GaussianBlur(hr, (0, 0), 1.5)
    assert texture_ratio(hr, hr) == pytest.approx(1.0)
    assert texture_ratio(smooth, hr, border=4) < 0.5
    noisy = np.clip(hr + np.random.default_rng(0).normal(0, 0.05, hr.shape), 0, 1)
    assert texture_ratio(noisy, hr) > 1.0


def test_half_precision_on_the_cpu_stays_within_a_level_of_full_precision(monkeypatch):
    """``--half`` on the CPU runs the model in bfloat16 (emulated on a CPU without it, so the
    test runs anywhere; the command refuses it there); the image skip and the output stay in
    float32, so the output is within a fraction of an 8-bit level."""
    from burstsr import device as dev

    monkeypatch.setattr(dev, "cpu_has_bf16", lambda: True)
    g = _trained_generator(scale=2)
    image = texture(40, 52, seed=9)
    full = enhance_image(g, image, tile=0)
    half = enhance_image(g, image, tile=0, half=True)
    assert half.dtype == np.float32 and half.shape == full.shape
    assert 0 < np.abs(half - full).max() < 1 / 255


def test_enhance_cli_refuses_half_on_a_cpu_without_bfloat16_before_any_work(tmp_path, monkeypatch):
    from burstsr import device as dev

    monkeypatch.setattr(dev, "cpu_has_bf16", lambda: False)
    save_generator(tmp_path / "m.pt", _trained_generator(scale=2))
    write_image(tmp_path / "im.png", texture(40, 48, seed=1))
    args = ["-q", "enhance", str(tmp_path / "im.png"), "-o", str(tmp_path / "out.png")]
    res = CliRunner().invoke(
        cli, [*args, "--model", str(tmp_path / "m.pt"), "--device", "cpu", "--half"]
    )
    assert res.exit_code != 0
    assert "--half: this CPU has no native bfloat16" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("depth", [8, 16])
def test_enhance_into_a_png_written_row_by_row_equals_the_array(tmp_path, depth):
    from burstsr.io.png_rows import png_rows

    g = _trained_generator(scale=2)
    image = texture(100, 130, seed=5)
    dtype = np.uint8 if depth == 8 else np.uint16
    expected = enhance_image(g, image, tile=32, out=np.empty((200, 260, 3), dtype))
    with png_rows(tmp_path / "out.png", (200, 260), depth) as out:
        enhance_image(g, image, tile=32, out=out)  # 4 bands of 5 tiles each
    written = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)[:, :, ::-1]
    assert np.array_equal(written, expected)


def test_enhance_file_keeps_gray_and_writes_other_formats_whole(tmp_path):
    from burstsr.io import read_image
    from burstsr.refiner.enhance import enhance_file

    g = _trained_generator(scale=2)
    write_image(tmp_path / "in.png", texture(40, 52, seed=3)[:, :, 0])  # 8-bit gray
    for name in ("out.png", "out.tif"):
        assert enhance_file(g, tmp_path / "in.png", tmp_path / name, tile=16) == (80, 104)
        written = read_image(tmp_path / name)
        assert written.gray and written.bit_depth == 8 and written.pixels.shape == (80, 104, 3)
    png, tif = (read_image(tmp_path / n).pixels for n in ("out.png", "out.tif"))
    assert np.array_equal(png, tif)


def _with_batch_norm_statistics(g: Generator, seed: int = 0) -> Generator:
    """``g`` with running statistics and affine parameters of its batch norms set away from
    the identity, so that folding them has something to fold."""
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in g.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(n, generator=rng))
                m.running_var.copy_(0.5 + torch.rand(n, generator=rng))
                m.weight.copy_(0.5 + torch.rand(n, generator=rng))
                m.bias.copy_(0.1 * torch.randn(n, generator=rng))
    return g


@pytest.mark.parametrize(("scale", "unshuffle"), [(4, 1), (1, 4)])
def test_folding_the_batch_norms_gives_the_same_output_and_leaves_the_model(scale, unshuffle):
    g = _with_batch_norm_statistics(
        Generator(GeneratorConfig(scale=scale, unshuffle=unshuffle, **TINY))
    )
    g.train()
    folded = fold_batch_norm(g)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in g.modules()) == 2 * 2 + 1
    assert g.training and not folded.training  # the model keeps its mode and its layers
    x = torch.rand(1, 3, 24, 20)
    with torch.no_grad():
        expected = g.eval()(x)
        assert torch.allclose(folded(x), expected, atol=1e-5)


def test_tiles_run_a_folded_channels_last_copy_made_once_per_set_of_weights():
    g = _with_batch_norm_statistics(Generator(GeneratorConfig(scale=1, unshuffle=4, **TINY)))
    g.eval()
    network = inference_network(g)
    assert network is not g and inference_network(g) is network  # remembered
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in network.modules())
    convs = [m for m in network.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    image = texture(64, 72, seed=3)
    before = enhance_image(g, image, tile=0)
    with torch.no_grad():  # an in-place change of the weights: a new copy, the new output
        g.body_tail[1].bias.add_(0.05)
    assert inference_network(g) is not network
    after = enhance_image(g, image, tile=0)
    with torch.no_grad():
        x = torch.from_numpy(image).permute(2, 0, 1)[None]
        direct = g(x)[0].clamp(0, 1).permute(1, 2, 0).numpy()
    assert np.abs(after - direct).max() < 1e-5
    assert np.abs(after - before).max() > 1e-3
    # Watched by hooks (burstsr inspect), the model runs as it is.
    handle = g.body[0].register_forward_hook(lambda *args: None)
    assert inference_network(g) is g
    handle.remove()
