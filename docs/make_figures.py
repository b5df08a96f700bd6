"""Make the pictures in docs/images from the example burst (run from the repository root).

python docs/make_figures.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from burstsr import MergeConfig, merge_burst
from burstsr.burst.synth import simulate_burst
from burstsr.io import read_image, write_image
from burstsr.metrics import psnr

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
sys.path.insert(0, str(ROOT / "benchmarks"))
from datasets import BURST_NAME, data_dir  # noqa: E402


def label(img: np.ndarray, text: str) -> np.ndarray:
    """Put a caption bar above an image (float RGB)."""
    bar = np.full((28, img.shape[1], 3), 255, np.uint8)  # OpenCV draws text on 8-bit images
    cv2.putText(bar, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar.astype(np.float32) / 255, img])


def side_by_side(panels: list[tuple[str, np.ndarray]], zoom: int) -> np.ndarray:
    gap = np.ones((panels[0][1].shape[0] * zoom + 28, 6, 3), np.float32)
    out = []
    for i, (text, img) in enumerate(panels):
        big = cv2.resize(img, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
        out += ([gap] if i else []) + [label(big, text)]
    return np.hstack(out)


def robust_figure() -> None:
    """A moving-object burst merged by mean and by robust (the test scene of tests/test_robust)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_robust import moving_object_burst

    with tempfile.TemporaryDirectory() as tmp:
        frames, clean, _, _ = moving_object_burst(Path(tmp))
        merged = {
            m: merge_burst(Path(tmp) / "b", config=MergeConfig(merge=m)).image
            for m in ("mean", "robust")
        }
    panels = [
        ("frame 0 (reference)", frames[0]),
        ("--merge mean", merged["mean"]),
        ("--merge robust", merged["robust"]),
    ]
    write_image(IMAGES / "robust_vs_mean.png", side_by_side(panels, 2))


def superres_figure() -> None:
    """Kodak kodim08, 16 frames x2: bicubic of the merge beside the finer-grid merge."""

    hr = read_image(data_dir() / "Kodak" / "kodim08.png").pixels
    burst = simulate_burst(hr, frames=16, scale=2, noise=0.02, shift=2.0, rotate=1.0, seed=8)
    with tempfile.TemporaryDirectory() as tmp:
        paths = [write_image(Path(tmp) / f"f{i:02d}.png", f) for i, f in enumerate(burst.frames)]
        plain = merge_burst(paths).image
        fine = merge_burst(paths, config=MergeConfig(scale=2, merge="robust")).image
    up = (
        F.interpolate(
            torch.from_numpy(plain).permute(2, 0, 1)[None],
            scale_factor=2,
            mode="bicubic",
            align_corners=False,
        )[0]
        .clamp(0, 1)
        .permute(1, 2, 0)
    )
    up = up.numpy()
    crop = (slice(140, 300), slice(300, 460))
    panels = [
        (f"bicubic x2 of the merge  {psnr(up, burst.hr):.1f} dB", up[crop]),
        (f"--scale 2  {psnr(fine, burst.hr):.1f} dB", fine[crop]),
        ("ground truth", burst.hr[crop]),
    ]
    write_image(IMAGES / "finer_grid.png", side_by_side(panels, 2))


def demo_figure() -> None:
    """What ``make demo`` (burstsr run examples/burst) makes: crops, x4, beside their inputs."""
    from burstsr.refiner.checkpoint import DEFAULT_RUN_MODEL, load_generator
    from burstsr.refiner.enhance import enhance_image

    burst = ROOT / "examples" / "burst"
    merged = merge_burst(burst).image
    model = load_generator(DEFAULT_RUN_MODEL)
    reads = model.config.merge_reads()  # what burstsr run does: merge as the model reads
    fine = merge_burst(burst, config=MergeConfig(**reads)) if reads else None
    final = (
        enhance_image(model, fine.image, confidence=fine.confidence)
        if fine is not None
        else enhance_image(model, merged)
    )
    frame0 = read_image(burst / "frame_00.png").pixels

    def up(img: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None]
        out = F.interpolate(t, scale_factor=4, mode="bicubic", align_corners=False)[0]
        return out.clamp(0, 1).permute(1, 2, 0).numpy()

    y, x, size = 260, 860, 300  # the parrot's eye and beak, in output pixels
    crop = (slice(y, y + size), slice(x, x + size))
    panels = [
        ("one frame, bicubic x4", up(frame0)[crop]),
        ("merge of 8, bicubic x4", up(merged)[crop]),
        ("burstsr run", final[crop]),
    ]
    write_image(IMAGES / "demo_run.png", side_by_side(panels, 1))


REAL_BURST = data_dir() / "bursts" / BURST_NAME


def kernels_figure() -> None:
    """The real phone burst merged on the x4 grid with the fixed Gaussian kernel and with the
    adaptive kernels: a flat area (contrast x3 about its mean, so the pattern shows) and a
    detailed one, 3x nearest."""
    if not REAL_BURST.is_dir():
        print(f"kernels figure skipped: {REAL_BURST} not found")
        return
    merges = {
        k: merge_burst(REAL_BURST, config=MergeConfig(scale=4, kernel=k)).image
        for k in ("gaussian", "adaptive")
    }
    size = 120
    rows = []
    for (y, x), stretch in (((600, 800), 3.0), ((2400, 3200), 3.0)):
        panels = []
        for k, image in merges.items():
            crop = image[y : y + size, x : x + size]
            crop = np.clip((crop - crop.mean()) * stretch + crop.mean(), 0, 1)
            panels.append((f"--kernel {k}", crop))
        rows.append(side_by_side(panels, 3))
    write_image(IMAGES / "kernels_real.png", np.vstack(rows))
    print(f"wrote {IMAGES / 'kernels_real.png'}")


FIGURES = {"demo": demo_figure, "robust": robust_figure, "superres": superres_figure}
FIGURES["kernels"] = kernels_figure


def main() -> None:
    """Every figure, or those named on the command line (demo, robust, superres, kernels)."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    names = sys.argv[1:]
    for name in names or FIGURES:
        FIGURES[name]()
    if names:
        return
    burst = ROOT / "examples" / "burst"
    result = merge_burst(burst)
    clean = read_image(ROOT / "examples" / "burst_clean_reference.png").pixels
    frame0 = read_image(burst / "frame_00.png").pixels
    y, x, size = 60, 150, 120
    crop = (slice(y, y + size), slice(x, x + size))
    panels = [
        (f"one frame  {psnr(frame0, clean):.1f} dB", frame0[crop]),
        (f"burstsr merge of 8  {psnr(result.image, clean):.1f} dB", result.image[crop]),
        ("noise-free reference", clean[crop]),
    ]
    write_image(IMAGES / "merge_example.png", side_by_side(panels, 3))
    print(f"wrote {IMAGES / 'merge_example.png'}")


if __name__ == "__main__":
    main()
