"""Super-resolution benchmark: does the burst beat a single frame, and does the refiner help?

Bursts are simulated from Set14 and Kodak (evaluation sets only; the models never saw them):
8 frames, x4 area downsampling, Gaussian noise sigma 0.02, 8-bit, a fixed seed per image.
Scored with PSNR and SSIM on the Y channel (BT.601) with a border crop of 4 (the field's
convention) against the HR image:

  bicubic(frame 0)    one frame upscaled: what a single photo gives
  bicubic(merge)      the burstsr merge upscaled
  enhance(merge)      the merge through each shipped refiner model

Also: PSNR of the full pipeline (merge -> enhance with the default model) against the number of
frames (1, 2, 4, 8, 16) on Set14, enhance speed (output megapixels per second) and the peak
memory of enhancing to a 24-megapixel output with the default tile size (in a fresh process).

    python benchmarks/bench_sr.py                # about 10 minutes on 2 CPU cores
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

from burstsr.burst.pipeline import merge_burst
from burstsr.burst.synth import simulate_burst
from burstsr.io import read_image, write_image
from burstsr.metrics import psnr, ssim
from burstsr.refiner.checkpoint import SHIPPED, load_generator
from burstsr.refiner.enhance import enhance_image
from burstsr.refiner.plots import line_chart

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
SCALE = 4


def bicubic(img: np.ndarray, scale: int = SCALE) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None]
    up = F.interpolate(t, scale_factor=scale, mode="bicubic", align_corners=False)
    return up[0].clamp(0, 1).permute(1, 2, 0).numpy()


def merge(frames: list[np.ndarray]) -> np.ndarray:
    if len(frames) == 1:
        return frames[0]
    with tempfile.TemporaryDirectory() as tmp:
        paths = [write_image(Path(tmp) / f"f{i:02d}.png", f) for i, f in enumerate(frames)]
        return merge_burst(paths).image


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
            merged = merge(burst.frames)
            results = {
                "bicubic(frame 0)": bicubic(burst.frames[0]),
                "bicubic(merge)": bicubic(merged),
            }
            for model_name, model in models.items():
                results[f"enhance(merge), {model_name}"] = enhance_image(model, merged)
            for method, img in results.items():
                rows.setdefault(method, []).append(score(img, burst.hr))
            print(f"  {name}: {path.name}", file=sys.stderr, flush=True)
        table[name] = {
            m: (float(np.mean([p for p, _ in v])), float(np.mean([s for _, s in v])))
            for m, v in rows.items()
        }
    return table


def frames_curve(folder: Path, model, counts=(1, 2, 4, 8, 16)) -> dict[int, float]:
    curve = {}
    files = sorted(folder.glob("*.png"))
    for n in counts:
        values = []
        for k, path in enumerate(files):
            burst = burst_of(path, k, frames=max(counts))  # the same frames, first n of them
            values.append(score(enhance_image(model, merge(burst.frames[:n])), burst.hr)[0])
        curve[n] = float(np.mean(values))
        print(f"  frames {n}: {curve[n]:.2f} dB", file=sys.stderr, flush=True)
    return curve


def speed_child(model_name: str, out: Path) -> None:
    """Enhance a 1500x1000 image to 6000x4000 (24 MP) with the default tile; report."""
    model = load_generator(model_name)
    rng = np.random.default_rng(0)
    image = np.clip(rng.random((1000, 1500, 3)), 0, 1).astype(np.float32)
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


def crops_figure(path: Path, model, out: Path) -> None:
    """frame 0 bicubic | merge bicubic | refined | ground truth, one crop, 2x nearest."""
    burst = burst_of(path, 99)
    merged = merge(burst.frames)
    panels = [bicubic(burst.frames[0]), bicubic(merged), enhance_image(model, merged), burst.hr]
    h, w = burst.hr.shape[:2]
    size = 128
    y, x = (h - size) // 2, (w - size) // 2
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
    default = next(iter(models))
    sets = {"Set14": args.data / "Set14", "Kodak": args.data / "Kodak"}
    print(f"# bench_sr (x{SCALE}, 8 frames, sigma 0.02; torch {torch.__version__})\n")
    table = quality(sets, models)
    for name, rows in table.items():
        print(f"{name} (PSNR / SSIM on Y, border {SCALE}):\n")
        print("| method | PSNR (dB) | SSIM |\n|---|---|---|")
        for method, (p, s) in rows.items():
            print(f"| {method} | {p:.2f} | {s:.4f} |")
        ours = rows[f"enhance(merge), {default}"][0]
        print(
            f"\nenhance(merge) - bicubic(merge): {ours - rows['bicubic(merge)'][0]:+.2f} dB; "
            f"- bicubic(frame 0): {ours - rows['bicubic(frame 0)'][0]:+.2f} dB\n"
        )
    curve = frames_curve(sets["Set14"], models[default])
    print("Full pipeline on Set14 against the number of frames:\n")
    print("| frames | " + " | ".join(str(n) for n in curve) + " |")
    print("|---" * (len(curve) + 1) + "|")
    print("| PSNR (dB) | " + " | ".join(f"{v:.2f}" for v in curve.values()) + " |\n")
    chart = line_chart(
        "PSNR (Y, dB) of merge + enhance, Set14, vs frames",
        {"PSNR": (list(curve), list(curve.values()))},
        log_y=False,
    )
    write_image(args.out / "sr_frames.png", chart.astype(np.float32) / 255)
    crops_figure(sets["Kodak"] / "kodim23.png", models[default], args.out / "sr_crops.png")
    subprocess.run(
        [sys.executable, __file__, "--speed-child", default, "--out", str(args.out)], check=True
    )
    speed = json.loads((args.out / "sr_speed.json").read_text())
    print(
        f"enhance to {speed['megapixels']:.0f} MP with the default tile (256): "
        f"{speed['seconds']:.1f} s, {speed['megapixels'] / speed['seconds']:.2f} output MP/s, "
        f"peak memory {speed['peak_mb']:.0f} MB"
    )
    (args.out / "sr.json").write_text(
        json.dumps({"table": table, "frames": curve, "speed": speed}, indent=2)
    )


if __name__ == "__main__":
    main()
