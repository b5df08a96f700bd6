"""Alignment on small frames: how often does the aligner settle on a wrong motion?

Bursts simulated from BSD200 (training images, full size 481x321, so 120x80 frames at x4),
8 frames each, in bench_sr.py's two worlds (plain: shifts up to 2 px and turns up to 1 degree;
camera: zoom up to 1 %, almost-still frames, lens blur, mosaic, noise, JPEG), each frame
aligned to frame 0 by ``estimate_transform`` and compared with the true motion: the RMS
distance of the four corners (frame pixels). A frame more than 3 px off has locked onto a
wrong motion (a period of a repetitive texture, or a start ECC could not recover from).

    python benchmarks/bench_align.py [--images 200] [--worlds plain,camera]

Rows: burstsr's default (ORB's affine fit as ECC's start, ECC to a homography), ECC alone
from a phase-correlation start (``--align ecc``), the default with an affine motion
(``--motion affine``), and the stacking scripts' recipe (one ``cv2.findTransformECC``
homography from the identity on the full frame) as the baseline.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from burstsr.burst.align import (
    AlignOptions,
    build_pyramid,
    estimate_transform,
    prepare_reference,
    to_gray,
)
from burstsr.burst.camera import CameraRanges
from burstsr.burst.synth import corner_error, simulate_burst, simulate_camera_burst
from burstsr.io import read_image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import data_dir  # noqa: E402
from stack_scripts import ecc_homography  # noqa: E402

METHODS = {
    "burstsr (auto, homography)": AlignOptions(),
    "burstsr --align ecc": AlignOptions(method="ecc"),
    "burstsr --motion affine": AlignOptions(motion="affine"),
}
BASELINE = "classic ECC (identity start)"


def classic_ecc(reference: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """The stacking scripts' alignment (stack_scripts.py); the identity where it fails."""
    try:
        return ecc_homography(reference, frame).astype(np.float64)
    except cv2.error:
        return np.eye(3)  # not converged: the identity stands


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--images", type=int, default=200, help="the first N BSD200 images")
    parser.add_argument("--worlds", default="plain,camera")
    args = parser.parse_args()
    folder = (args.data or data_dir()) / "BSD200"
    paths = sorted(folder.glob("*.png"))[: args.images]
    if not paths:
        sys.exit(f"{folder}: no PNG images (run `make data`)")
    for world in args.worlds.split(","):
        errors: dict[str, list[float]] = {name: [] for name in [*METHODS, BASELINE]}
        seconds = dict.fromkeys(errors, 0.0)
        for k, path in enumerate(paths):
            hr = read_image(path).pixels
            if world == "camera":
                ranges = CameraRanges(frames=(8, 8))
                burst = simulate_camera_burst(hr, scale=4, ranges=ranges, seed=500 + k)
            else:
                burst = simulate_burst(hr, frames=8, scale=4, seed=500 + k)
            grays = [to_gray(f) for f in burst.frames]
            for name, options in METHODS.items():
                t0 = time.perf_counter()
                reference = prepare_reference(grays[0], options=options)
                found = [
                    estimate_transform(reference, build_pyramid(g), options=options).transform
                    for g in grays[1:]
                ]
                seconds[name] += time.perf_counter() - t0
                errors[name] += _errors(found, burst.transforms[1:], grays[0].shape)
            t0 = time.perf_counter()
            found = [classic_ecc(grays[0], g) for g in grays[1:]]
            seconds[BASELINE] += time.perf_counter() - t0
            errors[BASELINE] += _errors(found, burst.transforms[1:], grays[0].shape)
        frames = len(errors[BASELINE])
        print(f"\n{world} bursts: {len(paths)} BSD200 images, {frames} frames aligned to frame 0\n")
        print("| method | median error (px) | > 0.5 px | > 3 px (wrong motion) | ms a frame |")
        print("|---|---|---|---|---|")
        for name, values in errors.items():
            e = np.array(values)
            print(
                f"| {name} | {np.median(e):.3f} | {(e > 0.5).sum()} | {(e > 3).sum()} | "
                f"{1000 * seconds[name] / frames:.1f} |"
            )
        base = np.median(errors[BASELINE])
        ours = np.median(errors["burstsr (auto, homography)"])
        print(f"\nmedian error, burstsr / classic ECC: {ours / base:.2f}", flush=True)


def _errors(found: list, true: list, shape: tuple[int, int]) -> list[float]:
    return [corner_error(f, t, shape) for f, t in zip(found, true, strict=True)]


if __name__ == "__main__":
    main()
