"""RAW bursts: the Bayer-domain merge against demosaicing every frame first.

Camera-realistic bursts of Kodak images (burstsr/burst/camera.py: lens blur, RGGB mosaic, shot
and read noise; 8 frames, some almost still, zoom up to 1 %), written as DNG files of the noisy
sensor mosaics; each is merged by ``merge_burst`` (LibRaw's demosaic of every frame, then the
robust merge; ``--scale 2`` for x2) and by ``merge_bayer`` (the frames' raw samples splatted per
colour with structure-adaptive kernels; ``--isotropic`` adds the isotropic Gaussian kernel of
``--sigma`` sensor pixels), at x1 and x2. PSNR (RGB, border 8) against the noise-free frame
through the same optics at that scale.

    python benchmarks/bench_raw.py [--images kodim01,kodim08] [--isotropic [--sigma 0.45]]

``--run`` adds ``burstsr run`` on the same bursts as RAW (both paths) and as the camera's JPEGs,
for each ``--model`` (a shipped name or a checkpoint; ``burst`` by default); ``--run-only`` skips
the merge table and the zone plate. ``--alignment-only``: how well the motion is found from the
demosaiced frames (what the Bayer path uses) against from a half-resolution luma of the raw 2x2
quads, on bursts of the full-size images with known motion.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from burstsr.burst.bayer import DEFAULT_SIGMA, merge_bayer
from burstsr.burst.camera import CameraRanges, linear_to_srgb, optics, srgb_to_linear
from burstsr.burst.config import MergeConfig
from burstsr.burst.pipeline import merge_burst
from burstsr.burst.synth import simulate_camera_burst
from burstsr.io import read_image, write_image
from burstsr.io.dng import raw_to_counts, write_dng
from burstsr.metrics import psnr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import data_dir  # noqa: E402

IMAGES = "kodim01,kodim05,kodim08,kodim13,kodim19,kodim23"
FIGURE_IMAGE = "kodim23"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=data_dir())
    parser.add_argument("--images", default=IMAGES)
    parser.add_argument(
        "--isotropic", action="store_true", help="also the Bayer merge with isotropic kernels"
    )
    parser.add_argument("--sigma", type=float, default=DEFAULT_SIGMA, help="their width")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument(
        "--run", action="store_true", help="also burstsr run on RAW against the same JPEGs"
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        help="with --run: a model to score, a shipped name or a checkpoint (repeat; default burst)",
    )
    parser.add_argument("--run-only", action="store_true", help="only the --run table")
    parser.add_argument(
        "--alignment-only", action="store_true", help="only the alignment table (see above)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent.parent / "bench-out"
    )
    args = parser.parse_args()
    if args.run_only:
        run_raw_against_jpeg(args)
        return
    if args.alignment_only:
        alignment_table(args)
        return
    labels = ["demosaic", "Bayer"] + ([f"Bayer, isotropic {args.sigma}"] if args.isotropic else [])
    rows: dict[str, list[float]] = {}
    print("| image | scale | demosaic, then merge | " + " | ".join(labels[1:]) + " |")
    print("|---|---|---|" + "---|" * (len(labels) - 1))
    for k, name in enumerate(args.images.split(",")):
        burst = camera_burst(args, name, k)
        linear = srgb_to_linear(burst.hr)
        truth = {1: burst.clean, 2: linear_to_srgb(optics(linear, 2 * burst.camera.blur, 2))}
        with tempfile.TemporaryDirectory() as tmp:
            paths = dng_frames(burst, Path(tmp))
            for scale in (1, 2):
                t = truth[scale]
                found = [merge_burst(paths, config=MergeConfig(scale=scale)).image]
                found.append(merge_bayer(paths, scale=scale).image)
                if args.isotropic:
                    found.append(
                        merge_bayer(paths, scale=scale, sigma=args.sigma, kernels=None).image
                    )
                h = min(t.shape[0], *(f.shape[0] for f in found))
                w = min(t.shape[1], *(f.shape[1] for f in found))
                scores = [psnr(f[:h, :w], t[:h, :w], border=8) for f in found]
                for label, value in zip(labels, scores, strict=True):
                    rows.setdefault(f"x{scale} {label}", []).append(value)
                if name == FIGURE_IMAGE and scale == 2:
                    crop_figure(args.out / "raw_crops.png", [*found[:2], t], h, w)
                cells = " | ".join(f"{v:.2f}" for v in scores)
                print(f"| {name} | x{scale} | {cells} |", flush=True)
    print()
    for key, values in rows.items():
        print(f"mean {key}: {np.mean(values):.2f} dB")
    print()
    zone_plate(args.out, args.frames)
    if args.run:
        print()
        run_raw_against_jpeg(args)


def camera_burst(args: argparse.Namespace, name: str, k: int):
    """The camera-realistic burst of Kodak image ``name``, the ``k``-th of ``--images``."""
    hr = read_image(args.data / "Kodak" / f"{name}.png").pixels
    ranges = CameraRanges(frames=(args.frames, args.frames))
    return simulate_camera_burst(hr, scale=4, ranges=ranges, seed=100 + k)


def quad_luma(frame) -> np.ndarray:
    """Half-resolution luma of a :class:`~burstsr.io.bayer.BayerFrame`: the white-balanced mean
    of every 2x2 quad, gamma-encoded as the alignment's luma is."""
    balanced = frame.cfa * frame.gains[frame.colors()]
    h, w = balanced.shape[0] // 2 * 2, balanced.shape[1] // 2 * 2
    quads = balanced[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    return np.power(np.clip(quads, 0, None), 1 / 2.2).astype(np.float32)


def alignment_table(args: argparse.Namespace) -> None:
    """Registration error (RMS corner distance, sensor pixels) of the motion found from the
    demosaiced frames and from the quads' luma, on full-size camera bursts of each image."""
    from burstsr.burst.align import estimate_transform, prepare_reference
    from burstsr.burst.pyramid import build_pyramid
    from burstsr.burst.synth import corner_error
    from burstsr.io.bayer import read_bayer

    to_sensor = np.array([[2, 0, 0.5], [0, 2, 0.5], [0, 0, 1.0]])  # quad (x, y) -> sensor
    print("| image | demosaiced frames (px) | 2x2 quads (px) |\n|---|---|---|")
    errors: dict[str, list[float]] = {"demosaic": [], "quads": []}
    for k, name in enumerate(args.images.split(",")):
        hr = read_image(args.data / "Kodak" / f"{name}.png").pixels
        ranges = CameraRanges(frames=(args.frames, args.frames))
        burst = simulate_camera_burst(hr, scale=1, ranges=ranges, seed=300 + k)
        with tempfile.TemporaryDirectory() as tmp:
            paths = dng_frames(burst, Path(tmp))
            found = [np.array(f.transform) for f in merge_burst(paths).frames]
            lumas = [quad_luma(read_bayer(p)) for p in paths]
        reference = prepare_reference(lumas[0])
        quads = [np.eye(3)] + [
            to_sensor
            @ estimate_transform(reference, build_pyramid(luma)).transform
            @ np.linalg.inv(to_sensor)
            for luma in lumas[1:]
        ]
        size = burst.frames[0].shape[:2]
        row = {}
        for label, transforms in (("demosaic", found), ("quads", quads)):
            pairs = zip(transforms, burst.transforms, strict=True)
            row[label] = float(np.mean([corner_error(t, true, size) for t, true in pairs]))
            errors[label].append(row[label])
        print(f"| {name} | {row['demosaic']:.4f} | {row['quads']:.4f} |", flush=True)
    print(f"| mean | {np.mean(errors['demosaic']):.4f} | {np.mean(errors['quads']):.4f} |")


def dng_frames(burst, folder: Path) -> list[Path]:
    """The burst's noisy sensor mosaics written as DNG files in ``folder``."""
    return [
        write_dng(folder / f"frame_{i:02d}.dng", raw_to_counts(raw))
        for i, raw in enumerate(burst.raws)
    ]


def run_raw_against_jpeg(args: argparse.Namespace) -> None:
    """``burstsr run`` (each model on its own merge) on each burst as RAW frames (demosaic and
    Bayer paths) and as the camera's JPEGs of the same exposures: PSNR-Y against the HR image."""
    from burstsr.refiner.checkpoint import load_generator
    from burstsr.refiner.enhance import enhance_image

    models = {name: load_generator(name) for name in args.model or ["burst"]}
    paths = ("raw", "bayer", "jpeg")
    found = {name: {label: [] for label in paths} for name in models}
    print(f"burstsr run ({', '.join(models)}) on RAW frames and on the same bursts' JPEGs, PSNR-Y:")
    print(
        "| image | "
        + " | ".join(f"{n}: RAW demosaic | {n}: RAW Bayer | {n}: JPEG" for n in models)
        + " |\n|---|"
        + "---|" * (3 * len(models))
    )
    for k, image in enumerate(args.images.split(",")):
        burst = camera_burst(args, image, k)
        cells = []
        with tempfile.TemporaryDirectory() as tmp:
            raws = dng_frames(burst, Path(tmp))
            jpegs = [
                write_image(Path(tmp) / f"frame_{i:02d}.png", frame)
                for i, frame in enumerate(burst.frames)
            ]
            merges: dict = {}
            for name, model in models.items():
                reads = model.config.merge_reads()
                config = MergeConfig(scale=reads["scale"], kernel=reads["kernel"])
                for label in paths:
                    key = (label, config.scale, config.kernel)
                    if key not in merges:
                        if label == "bayer":
                            merges[key] = merge_bayer(raws, scale=config.scale, config=config)
                        else:
                            merges[key] = merge_burst(
                                raws if label == "raw" else jpegs, config=config
                            )
                    merged = merges[key]
                    out = enhance_image(model, merged.image, confidence=merged.confidence)
                    h = min(out.shape[0], burst.hr.shape[0])
                    w = min(out.shape[1], burst.hr.shape[1])
                    value = psnr(out[:h, :w], burst.hr[:h, :w], border=4, y_channel=True)
                    found[name][label].append(value)
                    cells.append(f"{value:.2f}")
        print(f"| {image} | " + " | ".join(cells) + " |", flush=True)
    for name in models:
        means = {label: float(np.mean(v)) for label, v in found[name].items()}
        print(
            f"mean, {name}: RAW {means['raw']:.2f} dB (Bayer path {means['bayer']:.2f}), JPEG "
            f"{means['jpeg']:.2f} dB ({means['raw'] - means['jpeg']:+.2f} / "
            f"{means['bayer'] - means['jpeg']:+.2f} dB)"
        )


def crop_figure(path: Path, images: list[np.ndarray], h: int, w: int) -> None:
    """The most detailed 96 px square of ``images[-1]`` (the truth) in each image, side by
    side, 3x nearest."""
    luma = images[-1][:h, :w].mean(axis=2)
    detail = np.abs(np.diff(luma, axis=0))[:, :-1] + np.abs(np.diff(luma, axis=1))[:-1]
    size, best, at = 96, -1.0, (0, 0)
    for y in range(0, h - size, 16):
        for x in range(0, w - size, 16):
            score = float(detail[y : y + size, x : x + size].mean())
            if score > best:
                best, at = score, (y, x)
    y, x = at
    tiles = [
        np.pad(im[y : y + size, x : x + size], ((2, 2), (2, 2), (0, 0)), constant_values=1)
        for im in images
    ]
    row = np.concatenate(tiles, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, np.repeat(np.repeat(row, 3, axis=0), 3, axis=1))
    print(f"  figure: {path} (demosaic, then merge | Bayer | truth; x2, 3x nearest)", flush=True)


def false_colour(image: np.ndarray) -> float:
    """Mean distance of an sRGB image's pixels from gray (8-bit levels): on a gray scene, all
    of it is false colour."""
    return float(np.abs(image - image.mean(axis=2, keepdims=True)).mean() * 255)


def zone_plate(out: Path, frames: int) -> None:
    """A gray zone plate (rings of rising frequency) through the camera, as RAW frames: the
    false colour each merge paints, and a crop figure."""
    h, w = 768, 1024
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = (x - w / 2) ** 2 + (y - h / 2) ** 2
    gray = 0.5 + 0.35 * np.cos(np.pi * r2 / (2.2 * w))
    hr = np.repeat(gray[:, :, None], 3, axis=2).astype(np.float32)
    burst = simulate_camera_burst(hr, scale=4, ranges=CameraRanges(frames=(frames, frames)), seed=7)
    with tempfile.TemporaryDirectory() as tmp:
        paths = dng_frames(burst, Path(tmp))
        found = {
            "demosaic, then merge": merge_burst(paths).image,
            "Bayer": merge_bayer(paths).image,
        }
    print("Zone plate (gray: any colour is false colour; mean distance from gray, 8-bit levels):")
    for label, image in found.items():
        print(f"  {label}: {false_colour(image[8:-8, 8:-8]):.2f}")
    crop = (slice(64, 128), slice(160, 256))  # the rings near the frame's edge: fine detail
    tiles = [found[k][crop] for k in found] + [burst.clean[crop]]
    row = np.concatenate([np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=1) for t in tiles], 1)
    big = np.repeat(np.repeat(row, 3, axis=0), 3, axis=1)
    out.mkdir(parents=True, exist_ok=True)
    write_image(out / "raw_zone_plate.png", big)
    print(f"  figure: {out / 'raw_zone_plate.png'} (demosaic, then merge | Bayer | truth; 3x)")


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
