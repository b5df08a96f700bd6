"""Training the refiner end to end on tiny synthetic pairs (CPU, tiny networks)."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from burstsr.cli import cli
from burstsr.io import read_image, write_image
from burstsr.metrics import psnr
from burstsr.refiner.checkpoint import load_generator
from burstsr.refiner.data import find_pairs
from burstsr.refiner.enhance import enhance_image
from burstsr.refiner.losses import relativistic_loss
from burstsr.refiner.train import TrainConfig, train

from conftest import texture

ROOT = Path(__file__).resolve().parent.parent


def make_pairs(root: Path, count: int = 3, size: int = 64, scale: int = 2) -> Path:
    for i in range(count):
        hr = texture(size, size, seed=10 + i)
        lr = hr.reshape(size // scale, scale, size // scale, scale, 3).mean((1, 3))
        (root / f"s{i}").mkdir(parents=True)
        write_image(root / f"s{i}" / "HR.png", hr)
        write_image(root / f"s{i}" / "result.png", lr)
    return root


def tiny(tmp_path: Path, **overrides) -> TrainConfig:
    options = dict(
        pairs=str(tmp_path / "pairs"),
        out=str(tmp_path / "run"),
        blocks=2,
        channels=8,
        disc_channels=8,
        steps=12,
        pretrain_steps=6,
        batch=4,
        patch=32,
        val_every=6,
        log_every=1,
        val_fraction=0.34,
        lr=1e-3,
        lr_step=8,
        device="cpu",
    )
    options.update(overrides)
    return TrainConfig(**options)


def losses(run: Path) -> list[dict]:
    return [
        e
        for e in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
        if "loss_pixel" in e
    ]


def test_training_lowers_the_pixel_loss_and_writes_a_run(tmp_path):
    make_pairs(tmp_path / "pairs")
    train(tiny(tmp_path, steps=40, pretrain_steps=30, val_every=20))
    run = tmp_path / "run"
    pixel = [e["loss_pixel"] for e in losses(run) if e["phase"] == "pretrain"]
    assert np.mean(pixel[-5:]) < np.mean(pixel[:5])
    for name in (
        "last.pt",
        "last.json",
        "best.pt",
        "resume.pt",
        "metrics.jsonl",
        "loss_curves.png",
        "samples.png",
    ):
        assert (run / name).is_file(), name
    gan = [e for e in losses(run) if e["phase"] == "gan"]
    assert gan and {"loss_d", "loss_adv", "loss_content"} <= set(gan[0])
    meta = json.loads((run / "best.json").read_text())
    assert meta["config"]["scale"] == 2 and meta["train_args"]["steps"] == 40


def test_a_folding_model_trains_from_an_unfolded_one(tmp_path):
    # Pairs of a merge on a x2 grid: same size as HR, with the detail of a x2 smaller image.
    for i in range(3):
        hr = texture(64, 64, seed=20 + i)
        low = hr.reshape(32, 2, 32, 2, 3).mean((1, 3))
        (tmp_path / "pairs" / f"s{i}").mkdir(parents=True)
        write_image(tmp_path / "pairs" / f"s{i}" / "HR.png", hr)
        write_image(tmp_path / "pairs" / f"s{i}" / "result.png", low.repeat(2, 0).repeat(2, 1))
    make_pairs(tmp_path / "x2pairs")
    train(tiny(tmp_path, pairs=str(tmp_path / "x2pairs"), out=str(tmp_path / "x2"), steps=6))
    train(tiny(tmp_path, unshuffle=2, init=str(tmp_path / "x2"), steps=30, pretrain_steps=30))
    meta = json.loads((tmp_path / "run" / "last.json").read_text())
    assert meta["config"]["scale"] == 1 and meta["config"]["unshuffle"] == 2
    pixel = [e["loss_pixel"] for e in losses(tmp_path / "run")]
    assert np.mean(pixel[-5:]) < np.mean(pixel[:5])


def test_a_cheap_coarse_network_trains_from_the_cli_and_loads_as_trained(tmp_path):
    make_pairs(tmp_path / "pairs")
    args = ["-q", "train", "--pairs", str(tmp_path / "pairs"), "--out", str(tmp_path / "run")]
    args += ["--blocks", "1", "--channels", "8", "--head-kernel", "3", "--upsampler", "subpixel"]
    args += ["--no-bn"]
    args += ["--steps", "30", "--pretrain-steps", "30", "--batch", "4", "--patch", "32"]
    args += ["--val-every", "30", "--log-every", "1", "--lr", "2e-3", "--device", "cpu"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    g = load_generator(tmp_path / "run" / "last.pt")
    assert g.config.head_kernel == 3 and g.config.upsampler == "subpixel"
    assert g.head[0].kernel_size == (3, 3) and len(g.upsample) == 0
    assert not g.config.batch_norm and not list(g.buffers())
    pixel = [e["loss_pixel"] for e in losses(tmp_path / "run")]
    assert np.mean(pixel[-5:]) < np.mean(pixel[:5])


def test_warmup_raises_the_learning_rate_linearly_then_the_step_decay_applies(tmp_path):
    make_pairs(tmp_path / "pairs")
    args = ["-q", "train", "--pairs", str(tmp_path / "pairs"), "--out", str(tmp_path / "run")]
    args += ["--blocks", "1", "--channels", "8", "--steps", "8", "--pretrain-steps", "8"]
    args += ["--batch", "2", "--patch", "32", "--val-every", "8", "--log-every", "1"]
    args += ["--lr", "1e-3", "--lr-step", "6", "--warmup", "4", "--device", "cpu"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    logged = [e["lr"] for e in losses(tmp_path / "run")]
    expected = [1e-3 * f for f in (0.25, 0.5, 0.75, 1, 1, 1, 0.5, 0.5)]
    assert logged == pytest.approx(expected)
    saved = json.loads((tmp_path / "run" / "last.json").read_text())["train_args"]
    assert saved["warmup"] == 4


def test_overfitting_one_pair_raises_its_psnr(tmp_path):
    make_pairs(tmp_path / "pairs", count=1, size=48)
    pairs = tmp_path / "pairs"
    config = tiny(
        tmp_path,
        steps=150,
        pretrain_steps=150,
        val_fraction=0.0,
        val_every=150,
        lr=2e-3,
        lr_step=1000,
        ema=0.0,
        patch=24,
        blocks=2,
        channels=16,
    )
    lr_img = read_image(pairs / "s0" / "result.png").pixels
    hr_img = read_image(pairs / "s0" / "HR.png").pixels
    torch.manual_seed(config.seed)
    train(config)
    g = load_generator(tmp_path / "run")
    from burstsr.refiner.networks import Generator

    torch.manual_seed(config.seed)
    untrained = Generator(g.config).eval()
    before = psnr(enhance_image(untrained, lr_img, tile=0), hr_img, border=2)
    after = psnr(enhance_image(g, lr_img, tile=0), hr_img, border=2)
    assert after - before >= 3.0, (before, after)


def test_resume_continues_and_reproduces_the_uninterrupted_run(tmp_path):
    make_pairs(tmp_path / "pairs")
    whole = tiny(tmp_path, out=str(tmp_path / "whole"), steps=12)
    train(whole)
    part = tiny(tmp_path, out=str(tmp_path / "part"), steps=6)
    train(part)  # "interrupted" after 6 steps (a checkpoint is written at val_every = 6)
    # (Stopped at its pixel pre-training's end; the adversarial phase is added as it was in
    # the whole run.)
    res = CliRunner().invoke(
        cli,
        ["-q", "train", "--resume", str(tmp_path / "part"), "--steps", "12"]
        + ["--pretrain-steps", "6"],
    )
    assert res.exit_code == 0, res.output
    a, b = losses(tmp_path / "whole"), losses(tmp_path / "part")
    assert [e["step"] for e in b] == list(range(1, 13))
    for ea, eb in zip(a, b, strict=True):
        for key in ea:
            if key.startswith("loss_"):
                assert ea[key] == pytest.approx(eb[key], rel=1e-5, abs=1e-7), (ea["step"], key)


def test_resume_extends_a_pixel_loss_run_as_one_and_moves_the_adversarial_start_until_reached(
    tmp_path,
):
    make_pairs(tmp_path / "pairs")
    train(tiny(tmp_path, out=str(tmp_path / "pixel"), steps=4, pretrain_steps=4, val_every=4))
    resume = ["-q", "train", "--resume", str(tmp_path / "pixel")]
    res = CliRunner().invoke(cli, [*resume, "--steps", "8"])
    assert res.exit_code == 0, res.output
    assert {e["phase"] for e in losses(tmp_path / "pixel")} == {"pretrain"}  # no adversarial
    # A run with an adversarial phase ahead may move its start, until it gets there.
    gan = dict(steps=12, pretrain_steps=8, content_weight=0.0, time_limit=1e-9)
    train(tiny(tmp_path, out=str(tmp_path / "gan"), **gan))
    resume = ["-q", "train", "--resume", str(tmp_path / "gan")]
    res = CliRunner().invoke(cli, [*resume, "--pretrain-steps", "6"])
    assert res.exit_code == 0, res.output
    phases = [e["phase"] for e in losses(tmp_path / "gan")]
    assert phases == ["pretrain"] * 6 + ["gan"] * 6
    res = CliRunner().invoke(cli, [*resume, "--steps", "14", "--pretrain-steps", "13"])
    assert res.exit_code == 2 and "past its pixel pre-training" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_time_limit_stops_at_a_checkpoint_and_resume_finishes_the_same_run(tmp_path):
    make_pairs(tmp_path / "pairs")
    train(tiny(tmp_path, out=str(tmp_path / "whole"), steps=12))
    stopped = train(tiny(tmp_path, out=str(tmp_path / "part"), steps=12, time_limit=1e-9))
    assert stopped["step"] == 1  # the limit is met after the first step: saved there
    meta = json.loads((tmp_path / "part" / "last.json").read_text())
    assert meta["metrics"]["step"] == 1 and "val_psnr" in meta["metrics"]
    res = CliRunner().invoke(cli, ["-q", "train", "--resume", str(tmp_path / "part")])
    assert res.exit_code == 0, res.output
    a, b = losses(tmp_path / "whole"), losses(tmp_path / "part")
    assert [e["step"] for e in b] == list(range(1, 13))
    for ea, eb in zip(a, b, strict=True):
        assert ea["loss_pixel"] == pytest.approx(eb["loss_pixel"], rel=1e-5, abs=1e-7)


@pytest.mark.slow
def test_distributed_training_with_two_cpu_processes(tmp_path):
    make_pairs(tmp_path / "pairs")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        "29517",
        "-m",
        "burstsr",
        "-q",
        "train",
        "--pairs",
        str(tmp_path / "pairs"),
        "--out",
        str(tmp_path / "run"),
        "--blocks",
        "1",
        "--channels",
        "8",
        "--steps",
        "4",
        "--pretrain-steps",
        "2",
        "--batch",
        "2",
        "--patch",
        "32",
        "--val-every",
        "4",
        "--log-every",
        "1",
        "--device",
        "cpu",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "run").glob("*.pt")) == [
        "best.pt",
        "last.pt",
        "resume.pt",
    ]
    assert len(losses(tmp_path / "run")) == 4  # one writer: no duplicated lines
    load_generator(tmp_path / "run")


def test_synth_pairs_round_trip_through_the_pair_finder(tmp_path):
    hr_dir = tmp_path / "hr"
    hr_dir.mkdir()
    for i in range(2):
        write_image(hr_dir / f"img{i}.png", texture(96, 128, seed=i))
    args = [
        "-q",
        "synth",
        str(hr_dir),
        "--out",
        str(tmp_path / "pairs"),
        "--frames",
        "4",
        "--scale",
        "2",
        "--seed",
        "3",
    ]
    assert CliRunner().invoke(cli, args).exit_code == 0
    found = find_pairs(tmp_path / "pairs")
    assert found.scale == 2 and [p.scene for p in found.pairs] == ["img0", "img1"]
    meta = json.loads((tmp_path / "pairs" / "img0" / "meta.json").read_text())
    assert meta["frames_used"] == 4 and len(meta["true_transforms"]) == 4
    assert len(list((tmp_path / "pairs" / "img0" / "frames").glob("*.png"))) == 4
    merged = read_image(tmp_path / "pairs" / "img0" / "result.png")
    assert merged.bit_depth == 16 and merged.shape == (48, 64)
    # Deterministic for a seed.
    first = (tmp_path / "pairs" / "img1" / "frames" / "frame_02.png").read_bytes()
    args[4] = str(tmp_path / "again")
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert (tmp_path / "again" / "img1" / "frames" / "frame_02.png").read_bytes() == first
    # Scenes in two processes: the same pairs, byte for byte.
    args[4] = str(tmp_path / "parallel")
    assert CliRunner().invoke(cli, [*args, "--workers", "2"]).exit_code == 0
    for scene in ("img0", "img1"):
        for name in ("result.png", "HR.png", "frames/frame_03.png"):
            a = (tmp_path / "pairs" / scene / name).read_bytes()
            assert (tmp_path / "parallel" / scene / name).read_bytes() == a, (scene, name)


def run(*args):
    return CliRunner().invoke(cli, ["-q", *map(str, args)])


def assert_error(result, *fragments):
    assert result.exit_code == 2, result.output
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("Error: ") and "Traceback" not in result.output
    for f in fragments:
        assert f in line, line


TRAIN = [
    "--blocks",
    "1",
    "--channels",
    "4",
    "--steps",
    "2",
    "--pretrain-steps",
    "1",
    "--batch",
    "2",
    "--patch",
    "32",
    "--device",
    "cpu",
]


def test_train_bad_inputs(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_error(
        run("train", "--pairs", tmp_path / "empty", "--out", tmp_path / "r", *TRAIN), "no scenes"
    )
    root = make_pairs(tmp_path / "p1", count=2)
    (root / "s1" / "HR.png").unlink()
    assert_error(
        run("train", "--pairs", root, "--out", tmp_path / "r", *TRAIN), "s1", "missing HR.png"
    )
    root = make_pairs(tmp_path / "p2", count=2)
    write_image(root / "s1" / "HR.png", texture(50, 64))
    assert_error(
        run("train", "--pairs", root, "--out", tmp_path / "r", *TRAIN), "s1", "integer multiple"
    )
    root = make_pairs(tmp_path / "p3", count=2)
    write_image(root / "s1" / "result.png", texture(16, 16))
    assert_error(run("train", "--pairs", root, "--out", tmp_path / "r", *TRAIN), "s1", "differs")
    root = make_pairs(tmp_path / "p4", count=2)
    assert_error(
        run(
            "train",
            "--pairs",
            root,
            "--out",
            tmp_path / "r",
            *TRAIN[:-4],
            "--patch",
            "128",
            "--device",
            "cpu",
        ),
        "--patch 128",
    )
    assert not (tmp_path / "r").exists()  # nothing half-written
    if not torch.cuda.is_available():
        assert_error(
            run("train", "--pairs", root, "--out", tmp_path / "r", *TRAIN[:-1], "cuda"),
            "--device cuda",
        )
    assert_error(run("train", "--resume", tmp_path / "nothing"), "resume")
    assert_error(
        run("train", "--pairs", root, "--out", tmp_path / "r", *TRAIN, "--init", tmp_path / "x.pt"),
        "x.pt",
    )
    assert not (tmp_path / "r").exists()


def test_enhance_bad_inputs(tmp_path):
    write_image(tmp_path / "in.png", texture(32, 32))
    (tmp_path / "bad.pt").write_bytes(b"PK\x03\x04 truncated")
    out = tmp_path / "out.png"
    assert_error(
        run("enhance", tmp_path / "in.png", "-o", out, "--model", tmp_path / "bad.pt"),
        "bad.pt",
        "corrupt",
    )
    assert_error(run("enhance", tmp_path / "nothing.png", "-o", out), "nothing.png")
    assert_error(
        run("enhance", tmp_path / "in.png", "-o", tmp_path / "in.png", "--overwrite"), "input"
    )
    assert not out.exists()


def test_relativistic_loss_with_a_patch_discriminator(tmp_path):
    """The adversarial phase with a spectral-norm patch discriminator and the relativistic loss:
    the discriminator learns to tell the generator's output from HR (its loss falls)."""
    make_pairs(tmp_path / "pairs")
    config = dataclasses.replace(
        tiny(tmp_path, steps=60, pretrain_steps=10, val_every=60),
        disc="patch",
        gan_loss="relativistic",
        content_weight=0.0,
        pixel_weight=1.0,
        adv_weight=0.01,
        lr=1e-3,
    )
    train(config)
    gan = [e for e in losses(tmp_path / "run") if e["phase"] == "gan"]
    assert gan and {"loss_d", "loss_adv"} <= set(gan[0]) and "loss_content" not in gan[0]
    d = [e["loss_d"] for e in gan]
    assert np.isfinite(d).all() and d[-1] < d[0]
    # The discriminator's outputs on real and generated crops are logged, as probabilities.
    assert all(0 < e["d_real"] < 1 and 0 < e["d_fake"] < 1 for e in gan)
    assert gan[-1]["d_real"] > gan[-1]["d_fake"]


def test_relativistic_loss_values():
    real, fake = torch.full((4, 1), 3.0), torch.full((4, 1), -3.0)
    # A discriminator that separates well: small loss for it, large for the generator.
    assert relativistic_loss(real, fake, for_generator=False) < 0.01
    assert relativistic_loss(real, fake, for_generator=True) > 5.0
    assert torch.isclose(
        relativistic_loss(real, real, for_generator=True),
        relativistic_loss(real, real, for_generator=False),
    )


def test_periodic_loss_sees_a_grid_locked_pattern_beyond_the_target():
    from burstsr.metrics import periodic_pattern
    from burstsr.refiner.losses import periodic_loss

    rng = np.random.default_rng(0)
    hr = torch.from_numpy(rng.random((2, 3, 96, 96)).astype(np.float32) * 0.1 + 0.4)
    lattice = torch.zeros(1, 1, 96, 96)
    lattice[..., ::4, ::4] = 0.05
    out = (hr + lattice).requires_grad_(True)
    loss = periodic_loss(out, hr)
    metric = periodic_pattern(out[0].detach().permute(1, 2, 0).numpy()) / 255
    assert loss.item() == pytest.approx(metric, rel=0.2)  # the benchmark's score, in [0, 1]
    assert periodic_loss(hr, hr).item() == 0.0  # no more pattern than the target: no penalty
    loss.backward()
    assert out.grad.abs().sum() > 0


def test_grid_error_loss_sees_a_faint_grid_under_strong_texture():
    from burstsr.refiner.losses import grid_error_loss

    rng = np.random.default_rng(0)
    hr = torch.from_numpy(rng.random((2, 3, 128, 128)).astype(np.float32))  # strong texture
    rows = torch.tensor([-1.0, -1.0, 1.0, 1.0]).repeat(32) * 1e-3  # a row stripe of 0.26 levels
    out = (hr + rows.view(1, 1, 128, 1)).requires_grad_(True)
    loss = grid_error_loss(out, hr)
    # The stripe's RMS after the high-pass (a 4-px period passes the sigma-2 blur's residual
    # nearly whole), though the texture's own phase means are several times larger.
    assert loss.item() == pytest.approx(1e-3, rel=0.15)
    assert grid_error_loss(hr, hr).item() < 1e-5
    unlocked = hr + torch.from_numpy(rng.normal(0, 1e-3, hr.shape).astype(np.float32))
    assert grid_error_loss(unlocked, hr).item() < 0.3 * loss.item()  # noise is not a grid
    loss.backward()
    assert out.grad.abs().sum() > 0


def test_a_gan_trained_further_keeps_the_fidelity_model_as_its_dial_start(tmp_path):
    make_pairs(tmp_path / "pairs")
    gan = dict(steps=8, pretrain_steps=0, val_every=8, adv_weight=0.05, content_weight=0.0)
    train(tiny(tmp_path, out=str(tmp_path / "fid"), steps=6, pretrain_steps=6))
    train(tiny(tmp_path, out=str(tmp_path / "gan1"), init=str(tmp_path / "fid"), **gan))
    train(tiny(tmp_path, out=str(tmp_path / "gan2"), init=str(tmp_path / "gan1"), **gan))
    meta = json.loads((tmp_path / "gan2" / "last.json").read_text())
    assert meta["train_args"]["init"] == str(tmp_path / "gan1")
    assert meta["start"] == str(tmp_path / "fid")  # gan1's start, not gan1
    fidelity = load_generator(tmp_path / "fid").state_dict()
    for path in (tmp_path / "gan1", tmp_path / "gan2"):
        start = load_generator(path, strength=0.0).state_dict()
        assert all(torch.equal(v, fidelity[k]) for k, v in start.items() if v.is_floating_point())
    # A pixel-loss model trained from the fidelity model starts its dial there too.
    train(tiny(tmp_path, out=str(tmp_path / "fid2"), init=str(tmp_path / "fid"), steps=6))
    assert json.loads((tmp_path / "fid2" / "last.json").read_text())["start"] == str(
        tmp_path / "fid"
    )
