"""How much could any burst method gain on the camera bursts? A bound from a perfect burst.

bench_sr.py's camera bursts pass every frame through a lens blur (a Gaussian of 0.3-0.9 frame
pixels, drawn per image) and the pixels' area before anything else. What the blur took, no
number of frames brings back; a restoration can only undo it where it left enough contrast.
This benchmark scores what a perfect burst would give on the same bursts (the same images,
seeds and drawn blur as bench_sr.py):

  bicubic(frame 0)   one frame of the burst upscaled (bench_sr.py's baseline)
  perfect burst      the noise-free image through the lens and the pixels' area, known at every
                     HR position: infinitely many frames, no noise, no mosaic, no JPEG
  Wiener NSR         that image deconvolved with the true lens + pixel PSF (Wiener filter,
                     noise-to-signal ratio NSR, in linear light), then to sRGB
  run, MODEL         burstsr run --model MODEL on the burst's 8 frames (with --model MODEL)

With --ablations, also run on the same bursts without the JPEG step, the noise, both, the
Bayer mosaic, or all three, and a x4-grid model on the perfect burst itself (with the
confidence map of the burst's merge): how much of the gap each part of the camera, the burst's
sampling and merge, and the model account for.

PSNR-Y, border 4, against the HR image, as bench_sr.py scores. A learned restoration can beat a
linear filter where image priors help, so these are not hard limits; they say how much of the
camera-burst gap is the optics' and how much is noise, JPEG and a finite burst.

    python benchmarks/bench_bound.py                    # Set14 and Kodak, under a minute
    python benchmarks/bench_bound.py --model burst      # and burstsr run, image by image
    python benchmarks/bench_bound.py --model burst --ablations   # parts of the camera out
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

from burstsr.burst.camera import linear_to_srgb, srgb_to_linear
from burstsr.burst.synth import simulate_camera_burst
from burstsr.metrics import psnr
from burstsr.refiner.checkpoint import load_generator
from burstsr.refiner.enhance import enhance_image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sr import SCALE, ask_with_starts, bicubic, camera_burst, run  # noqa: E402
from bursts import CAMERA_SEED  # noqa: E402
from datasets import data_dir  # noqa: E402


def optics_otf(shape: tuple[int, int], sigma: float, box: int) -> np.ndarray:
    """Transfer function (on the FFT grid of ``shape``) of a Gaussian lens blur of ``sigma``
    HR pixels followed by the mean over a ``box`` x ``box`` pixel, both centred (zero phase).

    The box is the discrete one the simulator's area downsampling takes (its transform is
    sin(pi box f) / (box sin(pi f))), so that sampled at the pixels' centres this is
    ``burstsr.burst.camera.optics``."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.fftfreq(shape[1])[None, :]
    lens = np.exp(-2 * np.pi**2 * sigma**2 * (fx**2 + fy**2))
    return lens * _box(fy, box) * _box(fx, box)


def _box(f: np.ndarray, n: int) -> np.ndarray:
    den = n * np.sin(np.pi * f)
    safe = np.where(den == 0, 1.0, den)
    return np.where(den == 0, 1.0, np.sin(np.pi * n * f) / safe)


def filtered(linear: np.ndarray, transfer: np.ndarray) -> np.ndarray:
    """``linear (H, W, 3)`` multiplied by ``transfer`` in the frequency domain (periodic)."""
    spectrum = np.fft.fft2(linear, axes=(0, 1)) * transfer[..., None]
    return np.real(np.fft.ifft2(spectrum, axes=(0, 1)))


def to_srgb(linear: np.ndarray) -> np.ndarray:
    return np.clip(linear_to_srgb(np.clip(linear, 0, 1).astype(np.float32)), 0, 1)


# the same cameras with parts of the pipeline taken out (--ablations): changed parameters and
# whether the sensor has its Bayer mosaic
NO_NOISE = {"shot": 1e-12, "read": 1e-12}
ABLATIONS = {
    "no JPEG": ({"jpeg": 100}, True),
    "no noise": (NO_NOISE, True),
    "no JPEG, no noise": ({"jpeg": 100, **NO_NOISE}, True),
    "no mosaic": ({}, False),
    "no JPEG, noise or mosaic": ({"jpeg": 100, **NO_NOISE}, False),
}


def ablation_outputs(
    k: int, burst, model, merges: dict, perfect: np.ndarray
) -> list[tuple[str, np.ndarray]]:
    """(row name with a ``{label}`` field, output) of ``model`` on the burst of image ``k``
    with parts of its camera taken out, and, for a model of the x4 grid, on the ``perfect``
    burst (sRGB) itself, with the confidence map of the burst's own merge."""
    outputs = []
    for name, (change, bayer) in ABLATIONS.items():
        camera = dataclasses.replace(burst.camera, **change)
        other = simulate_camera_burst(
            burst.hr, scale=SCALE, params=camera, seed=CAMERA_SEED + k, bayer=bayer
        )
        outputs.append((f"run, {{label}}, {name}", run(model, other.frames)))
    reads = model.config.merge_reads()
    if reads.get("scale", 1) == SCALE:
        confidence = merges[SCALE, reads.get("kernel", "adaptive")][1]
        restored = enhance_image(model, perfect, confidence=confidence)
        outputs.append(("{label} on the perfect burst", restored))
    return outputs


def bound_rows(
    folder: Path, ratios: list[float], models: dict, ablations: bool = False
) -> list[tuple[float, dict[str, float]]]:
    """(drawn lens blur, PSNR-Y of each method) on the camera burst of every image in
    ``folder``; the methods include ``burstsr run`` with each of ``models`` and, with
    ``ablations``, :func:`ablation_outputs`."""
    rows = []
    for k, path in enumerate(sorted(folder.glob("*.png"))):
        burst = camera_burst(path, k)
        hr = burst.hr
        transfer = optics_otf(hr.shape[:2], burst.camera.blur * SCALE, SCALE)
        blurred = filtered(srgb_to_linear(hr).astype(np.float64), transfer)

        def score(img: np.ndarray, hr: np.ndarray = hr) -> float:
            return psnr(img, hr, border=4, y_channel=True)

        perfect = to_srgb(blurred)
        row = {
            "bicubic(frame 0)": score(np.clip(bicubic(burst.frames[0]), 0, 1)),
            "perfect burst": score(perfect),
        }
        for nsr in ratios:
            wiener = np.conj(transfer) / (np.abs(transfer) ** 2 + nsr)
            row[f"Wiener {nsr:g}"] = score(to_srgb(filtered(blurred, wiener)))
        merges: dict = {}  # the models that read the same merge share it
        for label, model in models.items():
            row[f"run, {label}"] = score(run(model, burst.frames, merges=merges))
            if ablations:
                for name, image in ablation_outputs(k, burst, model, merges, perfect):
                    row[name.format(label=label)] = score(image)
        print(
            f"  {path.stem}: blur {burst.camera.blur:.2f} frame px, "
            + ", ".join(f"{name} {value:.2f}" for name, value in row.items()),
            flush=True,
        )
        rows.append((burst.camera.blur, row))
    return rows


def gain_table(columns: dict[str, list[dict[str, float]]]) -> None:
    """Print the mean PSNR-Y of every method per column (gain over bicubic of frame 0)."""
    methods = list(next(iter(columns.values()))[0])
    print("\n| method | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for m in methods:
        cells = []
        for rows in columns.values():
            mean = float(np.mean([r[m] for r in rows]))
            gain = mean - float(np.mean([r["bicubic(frame 0)"] for r in rows]))
            cells.append(f"{mean:.2f} ({gain:+.2f})")
        print(f"| {m} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=data_dir())
    parser.add_argument("--sets", default="Set14,Kodak")
    parser.add_argument("--nsr", default="1e-2,1e-3,1e-4", help="Wiener noise-to-signal ratios")
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        help="also score burstsr run --model (a shipped name or a checkpoint); repeatable",
    )
    parser.add_argument(
        "--ablations",
        action="store_true",
        help="also run the models on the same bursts without JPEG, noise, both, or the mosaic",
    )
    parser.add_argument(
        "--split", type=float, default=0.55, help="lens blur (frame px) that splits the bursts"
    )
    args = parser.parse_args()
    ratios = [float(v) for v in args.nsr.split(",")]
    models = {name: load_generator(name) for name in args.model}
    ask_with_starts({name: name for name in models}, models)
    found: list[tuple[float, dict[str, float]]] = []
    columns = {}
    for name in args.sets.split(","):
        folder = args.data / name
        if not folder.is_dir():
            sys.exit(f"bench_bound: no image set at {folder} (make data)")
        print(f"{name}, camera bursts:", flush=True)
        rows = bound_rows(folder, ratios, models, args.ablations)
        columns[f"camera {name}"] = [row for _, row in rows]
        found += rows
    gain_table(columns)
    sharp = [row for blur, row in found if blur < args.split]
    soft = [row for blur, row in found if blur >= args.split]
    if sharp and soft:
        print(f"\nAll {len(found)} bursts by their lens blur (frame pixels):")
        gain_table(
            {
                f"{len(sharp)} under {args.split:g}": sharp,
                f"{len(soft)} at {args.split:g} or more": soft,
            }
        )


if __name__ == "__main__":
    main()
