"""The command line, end to end through click's CliRunner: results, reports and every bad input
(one line on stderr, exit code 2, no output left behind)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from burstsr.burst.synth import simulate_burst
from burstsr.cli import cli
from burstsr.io import read_image, write_image

from conftest import texture, write_frames


def run(*args):
    result = CliRunner().invoke(cli, ["-q", *map(str, args)])
    return result


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    assert result.stderr.rstrip().splitlines()[-1] == errors[0]  # the last thing said
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def test_merge_writes_result_report_and_aligned_frames(small_burst, tmp_path):
    folder, burst = small_burst
    out = tmp_path / "result.png"
    res = run(
        "merge",
        folder,
        "-o",
        out,
        "--report",
        tmp_path / "r.json",
        "--save-aligned",
        tmp_path / "aligned",
    )
    assert res.exit_code == 0, res.output
    merged = read_image(out)
    assert merged.bit_depth == 8 and merged.pixels.shape == burst.frames[0].shape
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["frames_used"] == 6 and len(report["frames"]) == 6
    frame = report["frames"][3]
    assert frame["used"] and frame["score"] > 0.5 and len(frame["transform"]) == 3
    assert set(frame["seconds"]) >= {"load", "align", "warp_merge"}
    np.testing.assert_allclose(np.array(frame["transform"]), burst.transforms[3], atol=0.1)
    aligned = sorted(p.name for p in (tmp_path / "aligned").glob("*.png"))
    assert aligned == [f"{i:03d}_frame_{i:02d}.png" for i in range(6)]
    warped = read_image(tmp_path / "aligned" / aligned[3]).pixels
    inner = (slice(8, -8), slice(8, -8))
    assert np.abs(warped[inner] - burst.clean[inner]).mean() < 0.03  # aligned onto the reference
    # The same call again needs --overwrite.
    assert_one_line_error(run("merge", folder, "-o", out), "already exists", "--overwrite")
    assert run("merge", folder, "-o", out, "--overwrite", "--merge", "median").exit_code == 0


def test_16_bit_input_gives_16_bit_output_and_gray_stays_gray(tmp_path):
    burst = simulate_burst(
        texture(64, 80, seed=1), frames=3, scale=1, noise=0.01, seed=0, quantize=False
    )
    write_frames(tmp_path / "b16", burst.frames, bit_depth=16)
    assert run("merge", tmp_path / "b16", "-o", tmp_path / "o16.png").exit_code == 0
    assert read_image(tmp_path / "o16.png").bit_depth == 16
    assert (
        run("merge", tmp_path / "b16", "-o", tmp_path / "o8.png", "--bit-depth", "8").exit_code == 0
    )
    assert read_image(tmp_path / "o8.png").bit_depth == 8
    grays = [np.repeat(f.mean(axis=2, keepdims=True), 3, axis=2) for f in burst.frames]
    for i, g in enumerate(grays):
        (tmp_path / "g").mkdir(exist_ok=True)
        write_image(tmp_path / "g" / f"{i}.png", g[:, :, 0])
    assert run("merge", tmp_path / "g", "-o", tmp_path / "og.png").exit_code == 0
    assert read_image(tmp_path / "og.png").gray


def test_merge_onto_a_finer_grid(small_burst, tmp_path):
    folder, burst = small_burst
    out = tmp_path / "fine.png"
    res = CliRunner().invoke(cli, ["-q", "merge", str(folder), "-o", str(out), "--scale", "2"])
    assert res.exit_code == 0, res.output
    h, w = burst.frames[0].shape[:2]
    assert read_image(out).shape[:2] == (2 * h, 2 * w)


def test_missing_and_empty_folder(tmp_path):
    assert_one_line_error(
        run("merge", tmp_path / "nope", "-o", tmp_path / "r.png"), "nope", "no such folder"
    )
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("hi")
    assert_one_line_error(
        run("merge", tmp_path / "empty", "-o", tmp_path / "r.png"), "empty", "no image files"
    )
    assert not (tmp_path / "r.png").exists()


def test_fewer_than_two_usable_frames(tmp_path):
    folder = tmp_path / "b"
    write_frames(folder, [texture(32, 32)])
    assert_one_line_error(run("merge", folder, "-o", tmp_path / "r.png"), "at least 2")
    (folder / "frame_01.png").write_bytes(b"corrupt")
    assert_one_line_error(
        run("merge", folder, "-o", tmp_path / "r.png", "--skip-bad"), "fewer than 2 usable frames"
    )
    assert not (tmp_path / "r.png").exists()


def test_frames_of_different_sizes(tmp_path):
    folder = tmp_path / "b"
    write_frames(folder, [texture(64, 64), texture(64, 64)])
    write_image(folder / "frame_02.png", texture(64, 72))
    assert_one_line_error(
        run("merge", folder, "-o", tmp_path / "r.png"), "frame_02.png", "72x64", "differs"
    )
    assert not (tmp_path / "r.png").exists()


def test_corrupt_file_stops_unless_skip_bad(small_burst, tmp_path):
    folder, _ = small_burst
    (folder / "frame_03.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 50)
    out = tmp_path / "r.png"
    assert_one_line_error(run("merge", folder, "-o", out), "frame_03.png")
    assert not out.exists()
    res = run("merge", folder, "-o", out, "--skip-bad", "--report", tmp_path / "r.json")
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["frames_used"] == 5
    assert "frame_03.png" in report["frames"][3]["message"]


def test_output_not_writable_or_an_input(small_burst, tmp_path):
    folder, _ = small_burst
    assert_one_line_error(run("merge", folder, "-o", tmp_path / "no" / "r.png"), "does not exist")
    (tmp_path / "file").write_text("x")
    assert_one_line_error(run("merge", folder, "-o", tmp_path / "file" / "r.png"), "r.png")
    target = folder / "frame_00.png"
    before = target.read_bytes()
    assert_one_line_error(run("merge", folder, "-o", target, "--overwrite"), "input")
    assert target.read_bytes() == before
    assert_one_line_error(
        run("merge", folder, "-o", tmp_path / "r.jpg", "--bit-depth", "16"), "16-bit"
    )


def test_nothing_aligns(tmp_path):
    folder = tmp_path / "b"
    write_frames(folder, [texture(96, 96, seed=s) for s in range(4)])  # four unrelated scenes
    assert_one_line_error(
        run("merge", folder, "-o", tmp_path / "r.png"),
        "none of the other 3 frames could be aligned",
        "--align",
    )
    assert not (tmp_path / "r.png").exists()
    assert not list(tmp_path.glob(".r.png*"))


def test_bad_options_are_one_line_errors(small_burst, tmp_path):
    folder, _ = small_burst
    assert_one_line_error(run("merge", folder, "--align", "sift"), "--align")
    assert_one_line_error(
        run("merge", folder, "--reference", "9", "-o", tmp_path / "r.png"),
        "--reference 9",
        "6 frames",
    )
    assert_one_line_error(
        run("merge", folder, "--reference", "best", "-o", tmp_path / "r.png"), "--reference best"
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_cuda_without_cuda(small_burst, tmp_path):
    folder, _ = small_burst
    assert_one_line_error(
        run("merge", folder, "-o", tmp_path / "r.png", "--device", "cuda"),
        "--device cuda",
        "CUDA is not available",
    )


def test_inputs_are_not_modified(small_burst, tmp_path):
    folder, _ = small_burst
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert run("merge", folder, "-o", tmp_path / "r.png", "--merge", "sigma-clip").exit_code == 0
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_save_aligned_never_overwrites_inputs(tmp_path):
    folder = tmp_path / "b"
    frames = simulate_burst(texture(64, 64), frames=2, scale=1, seed=0).frames
    folder.mkdir()
    write_image(folder / "001_x.png", frames[0])  # frame 0
    write_image(folder / "x.png", frames[1])  # frame 1, whose aligned copy is 001_x.png
    before = (folder / "001_x.png").read_bytes()
    assert_one_line_error(
        run("merge", folder, "-o", tmp_path / "r.png", "--save-aligned", folder),
        "--save-aligned",
        "overwrite",
    )
    assert (folder / "001_x.png").read_bytes() == before


def test_mixed_gray_and_colour_or_depths_keep_the_richer_output(tmp_path):
    burst = simulate_burst(
        texture(64, 80, seed=1), frames=3, scale=1, noise=0.01, seed=0, quantize=False
    )
    folder = tmp_path / "b"
    folder.mkdir()
    write_image(folder / "f0.png", burst.frames[0].mean(axis=2))  # gray, 8 bit
    write_image(folder / "f1.png", burst.frames[1], bit_depth=16)  # colour, 16 bit
    write_image(folder / "f2.png", burst.frames[2])
    assert run("merge", folder, "-o", tmp_path / "o.png").exit_code == 0
    out = read_image(tmp_path / "o.png")
    assert not out.gray and out.bit_depth == 16


def test_tiny_frames_are_refused_in_one_line(tmp_path):
    write_frames(tmp_path / "t", [np.full((1, 1, 3), 0.5, np.float32)] * 3)
    assert_one_line_error(run("merge", tmp_path / "t", "-o", tmp_path / "r.png"), "1x1", "8x8")
    assert not (tmp_path / "r.png").exists()


def test_output_folders_that_cannot_be_made(small_burst, tmp_path):
    afile = tmp_path / "afile.txt"
    afile.write_text("x")
    src = small_burst[0]
    assert_one_line_error(run("synth", src, "--out", afile), "afile.txt", "not a folder")
    assert_one_line_error(run("synth", src, "--out", afile / "sub"), "afile.txt is a file")
    assert_one_line_error(
        run("train", "--pairs", src, "--out", afile, "--steps", "1"), "afile.txt", "not a folder"
    )
    res = run("merge", src, "-o", tmp_path / "r.png", "--save-aligned", afile / "al")
    assert_one_line_error(res, "afile.txt is a file")
    assert not (tmp_path / "r.png").exists()


def test_enhance_makes_no_folder_when_a_check_fails(small_burst, tmp_path):
    target = tmp_path / "new" / "enhanced"
    res = run("enhance", small_burst[0], "-o", target, "--bit-depth", "16", "--model", "nothing.pt")
    assert_one_line_error(res, "nothing.pt")
    assert not (tmp_path / "new").exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc")
def test_an_unforeseen_os_error_is_one_line(small_burst):
    # /proc looks writable to the checks but refuses files: the error funnel's last resort.
    assert_one_line_error(run("merge", small_burst[0], "-o", "/proc/burstsr_test.png"), "/proc")


def test_verbosity_after_the_subcommand(small_burst, tmp_path):
    res = CliRunner().invoke(
        cli, ["merge", str(small_burst[0]), "-o", str(tmp_path / "a.png"), "-q"]
    )
    assert res.exit_code == 0 and res.stderr == ""
    res = CliRunner().invoke(
        cli, ["merge", str(small_burst[0]), "-o", str(tmp_path / "b.png"), "-v"]
    )
    assert res.exit_code == 0 and "DEBUG" in res.stderr


def test_run_help_shows_the_effective_grid():
    text = CliRunner().invoke(cli, ["run", "--help"]).output
    scale = text[text.index("--scale [") : text.index("--kernel [")]
    assert "4 for burst" in " ".join(scale.split()) and "default: 1" not in scale
