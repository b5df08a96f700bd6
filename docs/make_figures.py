"""Make the pictures in docs/images from the example burst (run from the repository root).

python docs/make_figures.py
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from burstsr import merge_burst
from burstsr.io import read_image, write_image
from burstsr.metrics import psnr

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"


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


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
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
