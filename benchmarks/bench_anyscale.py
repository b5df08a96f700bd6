"""Any output scale: the any-scale model against bicubic and the fixed-scale ``fidelity``.

    python benchmarks/bench_anyscale.py [--model anyscale|RUN_DIR] [--sets Set14,Kodak]

Simulated bursts of Set14 and Kodak, 8 frames, in bench_sr.py's two worlds (``--worlds``):
plain (area downsampling, noise 0.02) and camera (lens blur, Bayer mosaic, shot and read noise,
demosaicing, JPEG, zoom), seeds as in bench_sr.py; merged on the frames' grid (``burstsr
merge``), then rendered:

- at x2, x3 and x4 from bursts made at x4 (the truth: the HR image resized to that scale with
  antialiased bicubic, as in training): the any-scale model, bicubic of the same merge, and
  ``fidelity`` (x4 exactly; at x2 and x3 its x4 output resized, what ``--outscale`` does with a
  fixed-scale model);
- at x6 and x8, beyond the training range, from bursts made at x8 (frames an eighth of the HR
  image): the same three.

PSNR on Y, border = the scale. A crop figure of kodim23 at x8 (bicubic | fidelity resized |
any-scale | truth) is written to ``--out``/anyscale_crops.png, and three draws of ``--sample``
beside the mean to anyscale_samples.png.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bursts import world_burst  # noqa: E402
from crops import busiest, row  # noqa: E402
from datasets import data_dir  # noqa: E402

from burstsr.burst.pipeline import merge_burst  # noqa: E402
from burstsr.errors import InputError  # noqa: E402
from burstsr.io import read_image, write_image  # noqa: E402
from burstsr.metrics import psnr  # noqa: E402
from burstsr.refiner.checkpoint import load_generator  # noqa: E402
from burstsr.refiner.enhance import enhance_image  # noqa: E402
from burstsr.refiner.outscale import resize_to  # noqa: E402

NEAR = (2, 3, 4)  # from x4 bursts
FAR = (6, 8)  # from x8 bursts
FIGURE_IMAGE = "kodim23.png"
CROP = 160  # crop figures: the most detailed CROP x CROP pixels


def resized(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Antialiased bicubic resize (torch), as the training targets are made; clipped."""
    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
    out = F.interpolate(t, size=size, mode="bicubic", antialias=True, align_corners=False)
    return out[0].clamp(0, 1).permute(1, 2, 0).numpy()


def merged(frames: list[np.ndarray]) -> np.ndarray:
    """``burstsr merge`` of the frames; frame 0 alone when none of the others aligns (tiny
    frames of flat images at x8), which every method then shares."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = [write_image(Path(tmp) / f"f{i:02d}.png", f) for i, f in enumerate(frames)]
        try:
            return merge_burst(paths).image
        except InputError as exc:
            print(f"  frame 0 alone: {exc}", file=sys.stderr)
            return frames[0]


def score(image: np.ndarray, truth: np.ndarray, scale: int) -> float:
    return psnr(image, truth, border=scale, y_channel=True)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="anyscale")
    parser.add_argument("--fidelity", default="fidelity")
    parser.add_argument("--sets", default="Set14,Kodak")
    parser.add_argument("--limit", type=int, default=0, help="images per set (0: all)")
    parser.add_argument("--worlds", default="plain,camera")
    parser.add_argument("--data", type=Path, default=data_dir())
    parser.add_argument("--out", type=Path, default=HERE.parent / "bench-out")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    model = load_generator(args.model)
    fidelity = load_generator(args.fidelity)
    if not model.config.any_scale:
        sys.exit(f"{args.model}: not an any-scale model (train --latent)")
    rows: dict = {}
    for world in args.worlds.split(","):
        for name in args.sets.split(","):
            files = sorted((args.data / name).glob("*.png"))
            for k, path in enumerate(files[: args.limit or None]):
                hr = read_image(path).pixels
                for burst_scale, scales in ((4, NEAR), (8, FAR)):
                    burst = world_burst(world, hr, k, scale=burst_scale)
                    merge = merged(burst.frames)
                    h, w = merge.shape[:2]
                    fixed = enhance_image(fidelity, merge)
                    for s in scales:
                        size = (h * s, w * s)
                        truth = resized(burst.hr, size)
                        found = {
                            "bicubic(merge)": resized(merge, size),
                            "fidelity": resize_to(fixed, size),
                            "any-scale": enhance_image(model, merge, size=size),
                        }
                        for label, image in found.items():
                            rows.setdefault((world, name, s), {}).setdefault(label, []).append(
                                score(image, truth, s)
                            )
                        if path.name == FIGURE_IMAGE and s == 8 and world == "plain":
                            figure(args.out / "anyscale_crops.png", [*found.values(), truth])
                            samples(args.out / "anyscale_samples.png", model, merge, size)
                print(f"  {world} {name}: {path.name}", file=sys.stderr, flush=True)
    labels = ["bicubic(merge)", "fidelity", "any-scale"]
    print("Any output scale (PSNR-Y, dB; fidelity: its x4 output resized):\n")
    print("| bursts | set | scale | " + " | ".join(labels) + " | any-scale - bicubic |")
    print("|---|---|---|" + "---|" * (len(labels) + 1))
    report = {}
    for (world, name, s), found in rows.items():
        means = {label: float(np.mean(found[label])) for label in labels}
        report[f"{world} {name} x{s}"] = means
        gain = means["any-scale"] - means["bicubic(merge)"]
        cells = " | ".join(f"{means[label]:.2f}" for label in labels)
        print(f"| {world} | {name} | x{s} | {cells} | {gain:+.2f} |")
    print()
    return report


def figure(path: Path, images: list[np.ndarray]) -> None:
    """Crops of the truth's most detailed place: bicubic | fidelity resized | any-scale | truth."""
    y, x = busiest(images[-1], CROP)
    write_image(path, row([im[y : y + CROP, x : x + CROP] for im in images]))


def samples(path: Path, model, merge: np.ndarray, size: tuple[int, int]) -> None:
    """The mean rendering beside three ``--sample`` draws, and the draws' spread (x8)."""
    mean = enhance_image(model, merge, size=size)
    draws = [enhance_image(model, merge, size=size, seed=s) for s in (1, 2, 3)]
    spread = np.std(draws, axis=0)
    print(
        f"--sample: three draws differ from one another by {255 * float(spread.mean()):.2f} "
        f"8-bit levels on average (standard deviation), at most {255 * float(spread.max()):.1f}",
        flush=True,
    )
    y, x = busiest(mean, CROP)
    crops = [im[y : y + CROP, x : x + CROP] for im in (mean, *draws, np.clip(spread * 8, 0, 1))]
    write_image(path, row(crops))


if __name__ == "__main__":
    main()
