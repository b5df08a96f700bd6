"""A real burst with a ground truth: the phone burst of data/bursts, every frame made 4x smaller.

The simulated bursts of bench_sr.py know their truth but not the real world's motion, scene and
optics; the real phone burst is the real world but has no truth. Here every frame of the real
burst (7 JPEGs of 1600x1200) is area-downsampled 4x (400x300, what a sensor with 4x larger
pixels would record of the same image), optionally JPEG-compressed again at that size, and the
methods restore x4: the full-size frame that was made the burst's reference is the truth. The
motion between frames (hand shake, a little zoom, almost-still frames), the scene and its
optics are the phone's, not a simulator's. Each frame takes the turn as the reference (with
the others behind it), so every table row is a mean over 7 bursts.

  bicubic(frame)          the reference frame upscaled: what a single photo gives
  bicubic(merge)          burstsr merge (frames' grid) upscaled
  x4-grid merge           burstsr merge --scale 4 (adaptive kernels), no refiner
  run, MODEL              burstsr run --model MODEL (each model on the merge it reads)
  MODEL, one frame        the same model given the reference frame alone: its prior without
                          the burst's information
  MODEL, N frames         the first model on the reference and the next N - 1 frames

PSNR / SSIM on the Y channel (BT.601) against the full-size reference frame, leaving out a
border of 16 pixels (where the frames do not all overlap); the periodic-pattern score of run's
outputs (burstsr.metrics.periodic_pattern, 8-bit levels). Caveats: the truth is itself a
resized, JPEG-compressed phone frame (quality 92, a little noise of its own), and 4x
downsampling averages the phone's noise away, so these bursts are cleaner than the ones a
phone records at that size; --jpeg adds compression back. --camera makes the small frames
with the camera simulator's optics and sensor instead (burstsr.burst.camera, one fixed camera
in the middle of the training ranges: lens blur 0.5 small pixels, RGGB mosaic, shot and read
noise, demosaicing, sRGB, JPEG 90): the real motion and scene with a camera's degradations.

    python benchmarks/bench_real.py                      # about 10 minutes on 2 CPU cores
    python benchmarks/bench_real.py --models burst --references 0 --jpeg 0
    python benchmarks/bench_real.py --camera --jpeg 90    # the camera simulator's frames
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from burstsr.burst.camera import CameraParams, develop, srgb_to_linear
from burstsr.burst.camera import jpeg as jpeg_round_trip
from burstsr.io import read_image, write_image
from burstsr.metrics import periodic_pattern, psnr, ssim

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sr import SCALE, bicubic, load_models, merge, run  # noqa: E402
from crops import busiest, row  # noqa: E402
from datasets import BURST_NAME, data_dir  # noqa: E402

BORDER = 16  # output pixels left out of the scores: the frames do not all cover the edges


def decimate(frame: np.ndarray, jpeg: int) -> np.ndarray:
    """``frame`` area-downsampled ``SCALE`` x, then (``jpeg`` > 0) JPEG-compressed at that
    quality (OpenCV's encoder, 4:2:0)."""
    h, w = frame.shape[:2]
    small = np.clip(cv2.resize(frame, (w // SCALE, h // SCALE), interpolation=cv2.INTER_AREA), 0, 1)
    return jpeg_round_trip(small, jpeg) if jpeg > 0 else small


# The camera of --camera: the middle of burstsr.burst.camera's training ranges (lens blur
# 0.3-0.9, shot noise 1e-4-1.2e-2 log-uniform, read noise from the shot noise's fit).
CAMERA_BLUR, CAMERA_SHOT = 0.5, 2e-3
CAMERA_READ = float(np.exp(2.18 * np.log(CAMERA_SHOT) + 1.2))


def through_camera(frame: np.ndarray, quality: int, seed: int) -> np.ndarray:
    """``frame`` made ``SCALE`` x smaller by the camera simulator: linear light, lens blur,
    area downsampling, RGGB mosaic, shot and read noise (drawn from ``seed``), demosaicing,
    sRGB and JPEG at ``quality``."""
    params = CameraParams(
        frames=1, blur=CAMERA_BLUR, shot=CAMERA_SHOT, read=CAMERA_READ, jpeg=quality
    )
    rng = np.random.default_rng(seed)
    linear = srgb_to_linear(frame)
    return develop(linear, np.eye(3), params, scale=SCALE, rng=rng, warp=lambda im, _: im).image


def score(image: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """PSNR-Y and SSIM-Y against ``truth``, border :data:`BORDER`."""
    return (
        psnr(image, truth, border=BORDER, y_channel=True),
        ssim(image, truth, border=BORDER, y_channel=True),
    )


def restorations(lows: list[np.ndarray], models: dict, counts: list[int]) -> dict[str, np.ndarray]:
    """Every method's x4 output for the burst ``lows`` (its reference first)."""
    merges = {(SCALE, "adaptive"): merge(lows, SCALE)}  # shared by the models that read it
    out = {
        "bicubic(frame)": bicubic(lows[0]),
        "bicubic(merge)": bicubic(merge(lows)[0]),
        "x4-grid merge": np.clip(merges[SCALE, "adaptive"][0], 0, 1),
    }
    for label, model in models.items():
        out[f"run, {label}"] = run(model, lows, merges=merges)
        out[f"{label}, one frame"] = run(model, lows[:1])
    first = next(iter(models), None)
    for n in counts:
        if first is not None and 1 < n < len(lows):
            out[f"{first}, {n} frames"] = run(models[first], lows[:n])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=data_dir())
    parser.add_argument(
        "--models",
        default="burst,fidelity,gan",
        help="comma-separated MODEL[@STRENGTH] (gan@0.5: run --model gan --strength 0.5)",
    )
    parser.add_argument(
        "--references", default="all", help="0-based frames to use as reference, or all"
    )
    parser.add_argument(
        "--jpeg", default="0,90", help="JPEG qualities of the small frames (0: none)"
    )
    parser.add_argument(
        "--frames", default="2,4", help="also run the first model on this many frames"
    )
    parser.add_argument(
        "--camera",
        action="store_true",
        help="make the small frames with the camera simulator (JPEG at --jpeg, 90 for 0)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    args = parser.parse_args()

    folder = args.data / "bursts" / BURST_NAME
    paths = sorted(folder.glob("*.jpg"))
    if not paths:
        sys.exit(f"bench_real: no burst at {folder} (make data)")
    frames = [read_image(p).pixels for p in paths]
    h, w = (s // SCALE * SCALE for s in frames[0].shape[:2])
    frames = [f[:h, :w] for f in frames]
    if args.references == "all":
        refs = list(range(len(frames)))
    else:
        refs = [int(r) for r in args.references.split(",")]
    truth_periodic = [periodic_pattern(frames[r]) for r in refs]  # the same at every quality
    models = load_models({spec: spec for spec in args.models.split(",") if spec})
    counts = [int(n) for n in args.frames.split(",") if n]
    args.out.mkdir(parents=True, exist_ok=True)

    qualities = [int(q) for q in args.jpeg.split(",")]
    if args.camera:  # the camera always compresses: 0 means its default, once
        qualities = list(dict.fromkeys(q or 90 for q in qualities))
    world = "camera" if args.camera else "jpeg"
    for quality in qualities:
        if args.camera:
            lows_all = [through_camera(f, quality, seed=i) for i, f in enumerate(frames)]
        else:
            lows_all = [decimate(f, quality) for f in frames]
        table: dict[str, list[tuple[float, float]]] = {}
        periodic: dict[str, list[float]] = {}
        for r in refs:
            order = [r] + [i for i in range(len(frames)) if i != r]
            outputs = restorations([lows_all[i] for i in order], models, counts)
            truth = frames[r]
            for method, image in outputs.items():
                table.setdefault(method, []).append(score(image, truth))
                if method.startswith("run, "):
                    periodic.setdefault(method, []).append(periodic_pattern(image))
            cells = ", ".join(f"{m} {table[m][-1][0]:.2f}" for m in outputs)
            print(f"  {world} {quality}, reference {r}: {cells}", file=sys.stderr, flush=True)
            if r == refs[0]:
                size = 96
                y, x = busiest(truth, size)
                shown = ["bicubic(frame)", "x4-grid merge"]
                shown += [m for m in outputs if m.startswith("run, ")]
                panels = [outputs[m][y : y + size, x : x + size] for m in shown]
                panels.append(truth[y : y + size, x : x + size])
                name = args.out / f"real_truth_{world}{quality}.png"
                write_image(name, row(panels, zoom=2))
                print(f"  crops ({' | '.join(shown)} | truth): {name}", file=sys.stderr)

        print(
            f"\nThe real burst, frames {SCALE}x smaller"
            + (" by the camera simulator" if args.camera else "")
            + (f", JPEG {quality}" if quality > 0 else "")
            + f", x{SCALE}; mean over {len(refs)} reference frames (PSNR-Y, SSIM-Y, border"
            f" {BORDER}; periodic score of run's outputs, mean / max):\n"
        )
        print("| method | PSNR (dB) | gain over bicubic(frame) | SSIM | periodic |")
        print("|---|---|---|---|---|")
        base = float(np.mean([p for p, _ in table["bicubic(frame)"]]))
        for method, values in table.items():
            p = float(np.mean([v[0] for v in values]))
            s = float(np.mean([v[1] for v in values]))
            per = periodic.get(method)
            cell = f"{np.mean(per):.3f} / {np.max(per):.3f}" if per else ""
            print(f"| {method} | {p:.2f} | {p - base:+.2f} | {s:.4f} | {cell} |")
        mean, most = np.mean(truth_periodic), np.max(truth_periodic)
        print(f"\n(The truths' own periodic score: {mean:.3f} / {most:.3f}.)\n")
        print(flush=True)


if __name__ == "__main__":
    main()
