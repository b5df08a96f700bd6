"""Super-resolution benchmark: does the burst beat a single frame, and does the refiner help?

Bursts are simulated from Set14 and Kodak (evaluation sets only; the models never saw them):
8 frames, x4 area downsampling, Gaussian noise sigma 0.02, 8-bit, a fixed seed per image.
Scored with PSNR and SSIM on the Y channel (BT.601) with a border crop of 4 (the field's
convention) against the HR image:

  bicubic(frame 0)        one frame upscaled: what a single photo gives
  bicubic(merge)          the burstsr merge (frames' grid) upscaled
  merge on the x4 grid    burstsr merge --scale 4, no refiner
  enhance(...), MODEL     each shipped refiner model on the merge it reads: fidelity on the
                          frames'-grid merge, burst on the x4-grid merge (what burstsr run does);
                          and burstsr run's model with --ensemble (8 orientations averaged)

Also: PSNR of merge -> enhance against the number of frames (1, 2, 4, 8, 16) on Set14 for each
model, enhance speed (output megapixels per second) and the peak memory of enhancing to a
24-megapixel output with the default tile size (in a fresh process).

    python benchmarks/bench_sr.py                # about 7 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from burstsr.burst.pipeline import MergeConfig, merge_burst
from burstsr.burst.superres import SplatAccumulator
from burstsr.burst.synth import simulate_burst
from burstsr.io import read_image, write_image
from burstsr.metrics import psnr, ssim
from burstsr.refiner.checkpoint import DEFAULT_RUN_MODEL, SHIPPED, load_generator
from burstsr.refiner.enhance import enhance_image
from burstsr.refiner.plots import line_chart

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
SCALE = 4


def bicubic(img: np.ndarray, scale: int = SCALE) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None]
    up = F.interpolate(t, scale_factor=scale, mode="bicubic", align_corners=False)
    return up[0].clamp(0, 1).permute(1, 2, 0).numpy()


def merge(frames: list[np.ndarray], grid: int = 1) -> np.ndarray:
    """``burstsr merge [--scale grid]`` of the frames (one frame: itself, on that grid)."""
    if len(frames) == 1:
        if grid == 1:
            return frames[0]
        frame = torch.from_numpy(np.ascontiguousarray(frames[0])).permute(2, 0, 1)
        splat = SplatAccumulator(frame.shape[1:], grid)
        splat.add(frame, np.eye(3))
        return splat.result(frame).clamp(0, 1).permute(1, 2, 0).numpy()
    with tempfile.TemporaryDirectory() as tmp:
        paths = [write_image(Path(tmp) / f"f{i:02d}.png", f) for i, f in enumerate(frames)]
        return merge_burst(paths, config=MergeConfig(scale=grid)).image


def run(model, frames: list[np.ndarray]) -> np.ndarray:
    """Merge on the grid the model reads, then enhance: ``burstsr run --model``."""
    return enhance_image(model, merge(frames, model.config.unshuffle))


def score(img: np.ndarray, hr: np.ndarray) -> tuple[float, float]:
    return (
        psnr(img, hr, border=SCALE, y_channel=True),
        ssim(img, hr, border=SCALE, y_channel=True),
    )


def burst_of(path: Path, k: int, frames: int = 8):
    return simulate_burst(
        read_image(path).pixels,
        frames=frames,
        scale=SCALE,
        noise=0.02,
        shift=2.0,
        rotate=1.0,
        seed=4000 + k,
    )


def quality(sets: dict[str, Path], models: dict) -> dict:
    table = {}
    for name, folder in sets.items():
        rows = {}
        for k, path in enumerate(sorted(folder.glob("*.png"))):
            burst = burst_of(path, k)
            merges = {g: merge(burst.frames, g) for g in {1, SCALE}}
            results = {
                "bicubic(frame 0)": bicubic(burst.frames[0]),
                "bicubic(merge)": bicubic(merges[1]),
                f"merge on the x{SCALE} grid": merges[SCALE],
            }
            for model_name, model in models.items():
                results[_label(model_name, model)] = enhance_image(
                    model, merges[model.config.unshuffle]
                )
            if DEFAULT_RUN_MODEL in models:  # burstsr run --ensemble
                model = models[DEFAULT_RUN_MODEL]
                results[_label(DEFAULT_RUN_MODEL, model) + " --ensemble"] = enhance_image(
                    model, merges[model.config.unshuffle], ensemble=True
                )
            for method, img in results.items():
                rows.setdefault(method, []).append(score(img, burst.hr))
            print(f"  {name}: {path.name}", file=sys.stderr, flush=True)
        table[name] = {
            m: (float(np.mean([p for p, _ in v])), float(np.mean([s for _, s in v])))
            for m, v in rows.items()
        }
    return table


def _label(name: str, model) -> str:
    grid = model.config.unshuffle
    return f"enhance({'merge' if grid == 1 else f'x{grid}-grid merge'}), {name}"


def frames_curve(folder: Path, model, counts=(1, 2, 4, 8, 16)) -> dict[int, float]:
    curve = {}
    files = sorted(folder.glob("*.png"))
    for n in counts:
        values = []
        for k, path in enumerate(files):
            burst = burst_of(path, k, frames=max(counts))  # the same frames, first n of them
            values.append(score(run(model, burst.frames[:n]), burst.hr)[0])
        curve[n] = float(np.mean(values))
        print(f"  frames {n}: {curve[n]:.2f} dB", file=sys.stderr, flush=True)
    return curve


def speed_child(model_name: str, out: Path) -> None:
    """Enhance an image to 6000x4000 (24 MP) with the default tile; report."""
    model = load_generator(model_name)
    rng = np.random.default_rng(0)
    s = model.config.scale
    image = np.clip(rng.random((4000 // s, 6000 // s, 3)), 0, 1).astype(np.float32)
    t0 = time.perf_counter()
    result = enhance_image(model, image)
    seconds = time.perf_counter() - t0
    peak = next(
        int(line.split()[1]) / 1024
        for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith("VmHWM")
    )
    out.write_text(
        json.dumps(
            {
                "seconds": seconds,
                "megapixels": result.shape[0] * result.shape[1] / 1e6,
                "peak_mb": peak,
            }
        )
    )


def _busiest(image: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner of the ``size`` square with the most gradient energy (a detailed area)."""
    gray = image.mean(axis=2)
    energy = np.zeros_like(gray)
    energy[:, 1:] += np.diff(gray, axis=1) ** 2
    energy[1:, :] += np.diff(gray, axis=0) ** 2
    sums = np.pad(energy, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    window = sums[size:, size:] - sums[:-size, size:] - sums[size:, :-size] + sums[:-size, :-size]
    y, x = np.unravel_index(np.argmax(window), window.shape)
    return int(y), int(x)


def crops_figure(path: Path, models: dict, out: Path) -> None:
    """frame 0 bicubic | merge bicubic | each model's refined result | ground truth: the most
    detailed 128 px crop, 2x nearest."""
    burst = burst_of(path, 99)
    panels = [bicubic(burst.frames[0]), bicubic(merge(burst.frames))]
    panels += [run(model, burst.frames) for model in models.values()]
    panels.append(burst.hr)
    size = 128
    y, x = _busiest(burst.hr, size)
    tiles = [np.repeat(np.repeat(p[y : y + size, x : x + size], 2, 0), 2, 1) for p in panels]
    gap = np.ones((size * 2, 6, 3), np.float32)
    row = np.hstack([t if i == 0 else np.hstack([gap, t]) for i, t in enumerate(tiles)])
    write_image(out, row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-out")
    parser.add_argument("--speed-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.speed_child:
        speed_child(args.speed_child, args.out / "sr_speed.json")
        return
    args.out.mkdir(parents=True, exist_ok=True)
    models = {name: load_generator(name) for name, f in SHIPPED.items() if f.is_file()}
    if not models:
        sys.exit("no shipped model in burstsr/refiner/weights")
    sets = {"Set14": args.data / "Set14", "Kodak": args.data / "Kodak"}
    print(f"# bench_sr (x{SCALE}, 8 frames, sigma 0.02; torch {torch.__version__})\n")
    table = quality(sets, models)
    for name, rows in table.items():
        print(f"{name} (PSNR / SSIM on Y, border {SCALE}):\n")
        print("| method | PSNR (dB) | SSIM |\n|---|---|---|")
        for method, (p, s) in rows.items():
            print(f"| {method} | {p:.2f} | {s:.4f} |")
        print()
        for label in [m for m in rows if m.startswith("enhance")]:
            ours = rows[label][0]
            print(
                f"{label} - bicubic(merge): "
                f"{ours - rows['bicubic(merge)'][0]:+.2f} dB; "
                f"- bicubic(frame 0): {ours - rows['bicubic(frame 0)'][0]:+.2f} dB"
            )
        print()
    curves = {name: frames_curve(sets["Set14"], model) for name, model in models.items()}
    counts = list(next(iter(curves.values())))
    print("merge -> enhance on Set14 against the number of frames (PSNR, dB):\n")
    print("| model | " + " | ".join(str(n) for n in counts) + " |")
    print("|---" * (len(counts) + 1) + "|")
    for name, curve in curves.items():
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in curve.values()) + " |")
    print()
    chart = line_chart(
        "PSNR (Y, dB) of merge + enhance, Set14, vs frames",
        {name: (list(c), list(c.values())) for name, c in curves.items()},
        log_y=False,
        x_label="frames",
    )
    write_image(args.out / "sr_frames.png", chart.astype(np.float32) / 255)
    crops_figure(sets["Kodak"] / "kodim23.png", models, args.out / "sr_crops.png")
    speed = {}
    for name in models:
        subprocess.run(
            [sys.executable, __file__, "--speed-child", name, "--out", str(args.out)], check=True
        )
        speed[name] = result = json.loads((args.out / "sr_speed.json").read_text())
        print(
            f"{name}: enhance to {result['megapixels']:.0f} MP with the default tile: "
            f"{result['seconds']:.1f} s, {result['megapixels'] / result['seconds']:.2f} output "
            f"MP/s, peak memory {result['peak_mb']:.0f} MB"
        )
    (args.out / "sr.json").write_text(
        json.dumps({"table": table, "frames": curves, "speed": speed}, indent=2)
    )


if __name__ == "__main__":
    main()
