"""RAW bursts: decoded to linear light, merged in linear light, encoded once at the end."""

import cv2
import numpy as np
from click.testing import CliRunner

from burstsr.burst.camera import mosaic as bayer_from_rgb
from burstsr.burst.pipeline import merge_burst
from burstsr.cli import cli
from burstsr.io import read_image
from burstsr.io.dng import write_dng

from conftest import texture

BLACK, WHITE = 1024, 15000


def srgb_decode(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def raw_burst(folder, n=6, seed=0):
    """n DNG frames of one smooth linear scene, Bayer-sampled, with a black level and noise."""
    rng = np.random.default_rng(seed)
    # Linear light, well inside the range; smooth, so that demosaicing adds little error.
    linear = 0.05 + 0.5 * cv2.GaussianBlur(texture(64, 96, seed=seed), (0, 0), 2.0)
    folder.mkdir()
    for k in range(n):
        noisy = linear + rng.normal(0, 0.01, linear.shape)
        counts = np.clip(BLACK + noisy * (WHITE - BLACK), 0, 65535).astype(np.uint16)
        write_dng(folder / f"raw_{k}.dng", bayer_from_rgb(counts), black=BLACK, white=WHITE)
    return linear


def test_raw_burst_merges_to_the_expected_linear_values(tmp_path):
    linear = raw_burst(tmp_path / "raw")
    result = merge_burst(tmp_path / "raw")
    assert result.used == 6 and result.bit_depth == 16
    merged_linear = srgb_decode(result.image.astype(np.float64))
    inner = (slice(4, -4), slice(4, -4))
    error = np.abs(merged_linear[inner] - linear[inner])
    assert error.mean() < 0.006  # demosaicing a smooth scene, plus the remaining noise
    single = read_image(tmp_path / "raw" / "raw_0.dng").pixels  # RAW frames read as linear
    assert np.abs(single[inner] - linear[inner]).mean() > 1.6 * error.mean()  # noise went down


def test_raw_merge_cli_writes_16_bit_encoded_output(tmp_path):
    raw_burst(tmp_path / "raw")
    out = tmp_path / "merged.tif"
    res = CliRunner().invoke(cli, ["-q", "merge", str(tmp_path / "raw"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    image = read_image(out)
    assert image.bit_depth == 16 and not image.linear
    assert 0.2 < image.pixels.mean() < 0.9  # display-encoded, not dark linear values


def test_enhance_of_a_raw_file_reads_it_display_encoded(tmp_path):
    """A RAW file is sRGB-encoded before the model, as its merge would be: the same output as
    enhancing that encoding saved as a 16-bit PNG, written 16 bit and not dark."""
    import torch

    from burstsr.burst.camera import linear_to_srgb
    from burstsr.io import write_image
    from burstsr.refiner.checkpoint import save_generator
    from burstsr.refiner.networks import Generator, GeneratorConfig

    raw_burst(tmp_path / "raw", n=1)
    torch.manual_seed(0)
    model = save_generator(
        tmp_path / "m.pt", Generator(GeneratorConfig(scale=2, channels=8, blocks=1)).eval()
    )
    encoded = linear_to_srgb(read_image(tmp_path / "raw" / "raw_0.dng").pixels)
    write_image(tmp_path / "encoded.png", encoded, bit_depth=16)
    outs = {}
    for name, src in (("raw", "raw/raw_0.dng"), ("png", "encoded.png")):
        out = tmp_path / f"{name}_x2.png"
        res = CliRunner().invoke(
            cli, ["-q", "enhance", str(tmp_path / src), "-o", str(out), "--model", str(model)]
        )
        assert res.exit_code == 0, res.output
        outs[name] = read_image(out)
    assert outs["raw"].bit_depth == 16 and outs["raw"].pixels.shape == (128, 192, 3)
    assert np.abs(outs["raw"].pixels - outs["png"].pixels).max() < 1 / 255
