"""Before heavy work: the output size and estimate, the size limit, and --crop."""

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from burstsr.burst.pipeline import merge_burst
from burstsr.cli import cli
from burstsr.errors import InputError
from burstsr.estimate import (
    ENHANCE_BYTES_PER_PX,
    Estimate,
    check_output_size,
    enhance_estimate,
    merge_estimate,
    outscaled,
    seconds_per_input_pixel,
)
from burstsr.io import load_burst, read_image
from burstsr.io.crop import Crop
from burstsr.refiner.checkpoint import save_generator
from burstsr.refiner.networks import Generator, GeneratorConfig

from conftest import write_frames


def tiny_model(path: Path, **config) -> Path:
    torch.manual_seed(0)
    config = {"scale": 2, "channels": 8, "blocks": 1, **config}
    return save_generator(path, Generator(GeneratorConfig(**config)).eval())


def test_estimates_give_the_exact_output_size_and_grow_with_it():
    small = merge_estimate((100, 150), 8, 4, "cpu", with_torch=True)
    large = merge_estimate((200, 300), 8, 4, "cpu", with_torch=True)
    assert (small.width, small.height) == (600, 400) and large.megapixels == 4 * small.megapixels
    assert large.peak_bytes > small.peak_bytes and large.seconds > small.seconds
    assert merge_estimate((100, 150), 8, 4, "cuda", with_torch=True).seconds is None
    g = Generator(GeneratorConfig(scale=4, channels=8, blocks=1))
    rate = seconds_per_input_pixel(g)
    assert rate > 0
    est = enhance_estimate(g, (300, 500), rate=rate)
    assert (est.width, est.height) == (2000, 1200) and est.seconds > 0
    assert enhance_estimate(g, (300, 500)).seconds is None  # no rate, no time
    both = small.then(est)
    assert (both.width, both.height) == (2000, 1200)
    assert both.seconds == pytest.approx(small.seconds + est.seconds)
    assert both.peak_bytes == max(small.peak_bytes, est.peak_bytes)
    text = Estimate(6400, 4800, 150.0, 2.8e9).describe()
    assert text == "6400x4800 (30.7 MP), about 2 min 30 s and 2.8 GB of memory"


def test_a_final_size_changes_the_estimate_as_the_model_renders_it():
    own = Estimate(2000, 1200, 10.0, 1e9)
    assert outscaled(own, None, True) is own
    bigger = outscaled(own, (2400, 4000), any_scale=True)  # rendered directly: 4x the pixels
    assert (bigger.width, bigger.height) == (4000, 2400)
    assert bigger.seconds == pytest.approx(40.0) and bigger.peak_bytes > own.peak_bytes
    resized = outscaled(own, (2400, 4000), any_scale=False)  # the x4 output, resized
    assert resized.seconds == own.seconds and resized.peak_bytes > own.peak_bytes
    assert outscaled(own, (600, 1000), any_scale=True).seconds == pytest.approx(2.5)


def test_the_size_limit_refuses_before_any_work():
    est = Estimate(16000, 12000, 500.0, 3e9)
    with pytest.raises(InputError, match=r"192\.0 MP.*--crop.*--max-output-mp"):
        check_output_size(est, 64, "use --crop")
    check_output_size(est, 0, "use --crop")  # 0: no limit
    check_output_size(est, 200, "use --crop")


@pytest.fixture
def burst_folder(tmp_path, small_burst):
    return small_burst[0]


def test_commands_stop_above_the_limit_and_say_what_helps(tmp_path, burst_folder, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = str(tiny_model(tmp_path / "m.pt"))
    runner = CliRunner()
    # run: 160x224 frames -> 320x448 (0.14 MP) with a x2 model
    res = runner.invoke(cli, ["run", str(burst_folder), "--model", model, "--max-output-mp", "0.1"])
    assert res.exit_code == 2, res.output
    assert "448x320 (0.1 MP)" in res.stderr and "--crop" in res.stderr
    assert "Traceback" not in res.stderr and not list(tmp_path.glob("result*"))
    res = runner.invoke(
        cli, ["run", str(burst_folder), "--model", model, "--max-output-mp", "1", "-o", "r.png"]
    )
    assert res.exit_code == 0 and "output 448x320" in res.stderr
    # merge: the limit applies to the finer grids only
    res = runner.invoke(cli, ["merge", str(burst_folder), "--scale", "2", "--max-output-mp", "0.1"])
    assert res.exit_code == 2 and "--scale" in res.stderr and not Path("result_grid2.png").exists()
    res = runner.invoke(cli, ["-q", "merge", str(burst_folder), "--max-output-mp", "0.01"])
    assert res.exit_code == 0 and Path("result.png").exists()
    # enhance
    res = runner.invoke(cli, ["enhance", "result.png", "--model", model, "--max-output-mp", "0.1"])
    assert res.exit_code == 2 and "result.png" in res.stderr and "--crop" in res.stderr
    assert not Path("result_x2.png").exists()


def test_merge_of_a_crop_is_the_merge_of_the_cropped_frames(tmp_path, burst_folder):
    crop = Crop(40, 24, 120, 96)
    frames = [read_image(p).pixels for p in load_burst(burst_folder).paths]
    write_frames(tmp_path / "cut", [crop.apply(f, "f") for f in frames])
    cropped = merge_burst(load_burst(burst_folder, crop=crop))
    reference = merge_burst(tmp_path / "cut")
    assert cropped.image.shape == (96, 120, 3) and cropped.used == 6
    assert np.array_equal(cropped.image, reference.image)
    res = CliRunner().invoke(
        cli,
        ["-q", "merge", str(burst_folder), "--crop", "40,24,120,96", "-o", str(tmp_path / "c.png")],
    )
    assert res.exit_code == 0 and read_image(tmp_path / "c.png").shape == (96, 120)


@pytest.mark.parametrize(
    "crop,message",
    [
        ("100,100,200,200", "reaches outside"),
        ("0,0,4", "expected X,Y,W,H"),
        ("-1,0,50,50", "0 or more"),
        ("0,0,4,50", "at least 8"),
    ],
)
def test_bad_crops_are_refused_by_name(tmp_path, burst_folder, crop, message):
    out = tmp_path / "c.png"
    res = CliRunner().invoke(cli, ["merge", str(burst_folder), "--crop", crop, "-o", str(out)])
    assert res.exit_code == 2 and message in res.stderr and "--crop" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and not out.exists()


def test_enhance_of_a_crop_is_the_enhancement_of_the_cropped_image(tmp_path, burst_folder):
    model = str(tiny_model(tmp_path / "m.pt"))
    frame = load_burst(burst_folder).paths[0]
    write_frames(tmp_path / "cut", [Crop(16, 8, 64, 48).apply(read_image(frame).pixels, "f")])
    runner = CliRunner()
    for src, out, extra in (
        (frame, "a.png", ["--crop", "16,8,64,48"]),
        (tmp_path / "cut" / "frame_00.png", "b.png", []),
    ):
        res = runner.invoke(
            cli, ["-q", "enhance", str(src), "--model", model, "-o", str(tmp_path / out), *extra]
        )
        assert res.exit_code == 0, res.output
    a, b = read_image(tmp_path / "a.png"), read_image(tmp_path / "b.png")
    assert a.shape == (96, 128) and np.array_equal(a.pixels, b.pixels)


def test_the_bayer_path_is_estimated_above_the_merge_it_starts_from():
    from burstsr.estimate import bayer_estimate, merge_estimate

    for scale in (1, 2):
        base = merge_estimate((3000, 4000), 8, scale, "cpu", with_torch=True)
        bayer = bayer_estimate(base, (3000, 4000), 8, scale)
        assert (bayer.width, bayer.height) == (base.width, base.height)
        assert bayer.seconds > base.seconds and bayer.peak_bytes > base.peak_bytes
    # Measured on 8 DNG frames of 12 MP (docs/benchmarks.md): 54 s and 1.80 GB at x1, 284 s
    # and 4.20 GB at x2 (on a slow day of the 2-core machine).
    x1, x2 = (
        bayer_estimate(
            merge_estimate((3000, 4000), 8, s, "cpu", with_torch=True), (3000, 4000), 8, s
        )
        for s in (1, 2)
    )
    assert 45 < x1.seconds < 65 and 1.4e9 < x1.peak_bytes < 2.4e9
    assert 230 < x2.seconds < 340 and 3.4e9 < x2.peak_bytes < 5.2e9


def test_an_output_written_row_by_row_is_not_counted_whole():
    g = Generator(GeneratorConfig(scale=4, channels=8, blocks=1))
    held, streamed = (enhance_estimate(g, (300, 500), streamed=s).peak_bytes for s in (False, True))
    assert held - streamed == ENHANCE_BYTES_PER_PX["out"] * 300 * 500 * 16


def test_the_refiners_work_is_counted_over_the_tiles_enhance_runs():
    """The time estimate scales with the pixels the tiles run on, context and cross-fade
    included, edge tiles as narrow as they are: the same count as enhance's own tiles."""
    from burstsr.estimate import tile_work
    from burstsr.refiner.enhance import tile_boxes

    for h, w, tile, blend, pad in [
        (2400, 3200, 1024, 8, 112),
        (100, 70, 32, 4, 10),
        (50, 50, 64, 0, 0),
    ]:
        ran = 0
        for row in tile_boxes(h, w, tile, blend):
            for b in row:
                ran += (min(b.ay1 + pad, h) - max(b.ay0 - pad, 0)) * (
                    min(b.ax1 + pad, w) - max(b.ax0 - pad, 0)
                )
        assert tile_work(h, w, tile, blend, pad) == ran
    # A 3200x2400 merge in tiles of 1024: 1.44 times its pixels, not 12 whole padded tiles.
    assert tile_work(2400, 3200, 1024, 8, 112) < 1.5 * 2400 * 3200


def test_back_projection_adds_its_iterations_and_the_planes_it_holds():
    from burstsr.estimate import back_projection_estimate
    from burstsr.refiner.backproject import (
        BACK_PROJECTED_BYTES,
        BACK_PROJECTION_BYTES,
        band_rows_of,
    )

    run = Estimate(6400, 4800, 85.0, 1.6e9)  # run's estimate with the output held whole
    projected = back_projection_estimate(run, 7)
    assert (projected.width, projected.height) == (6400, 4800)
    # Measured on the real burst forced through it (7 frames, 30.7 MP out, docs/benchmarks.md):
    # 128 s and 2.1 GB in all (in bands), against 85 s and 1.26 GB without (written row by row).
    assert 35 < projected.seconds - run.seconds < 70
    bands = band_rows_of(4800, 4)
    assert len(bands) == 5 and max(y1 - y0 for _, _, y0, y1 in bands) < 1300
    extra = BACK_PROJECTED_BYTES * 6400 * 4800 + BACK_PROJECTION_BYTES * 6400 * 1216
    assert projected.peak_bytes - run.peak_bytes == extra
    assert 2.0e9 < projected.peak_bytes < 2.8e9
    # Twice the frames, about twice the extra time; an output that was to be written row by
    # row is now held as well; no time without a rate; a small output in one band.
    assert back_projection_estimate(run, 14).seconds - run.seconds == pytest.approx(
        2 * (projected.seconds - run.seconds)
    )
    streamed = back_projection_estimate(run, 7, streamed=True)
    assert streamed.peak_bytes - projected.peak_bytes == ENHANCE_BYTES_PER_PX["out"] * 6400 * 4800
    assert back_projection_estimate(Estimate(64, 48, None, 1e9), 7).seconds is None
    assert band_rows_of(1200, 4) == [(0, 1200, 0, 1200)]
