"""The stacking scripts burstsr is measured against, as stand-alone programs (OpenCV + numpy).

    python benchmarks/stack_scripts.py classic-ecc FRAMES_DIR OUT.png
    python benchmarks/stack_scripts.py auto-stack FRAMES_DIR OUT.png

``classic-ecc``  the image-stacking recipe at full resolution: every frame aligned to the first
                 with ``cv2.findTransformECC`` (homography, identity start, 100 iterations /
                 1e-6, Gaussian 5), warped with bilinear ``cv2.warpPerspective``, averaged.
``auto-stack``   the popular ``auto_stack.py``-style script: frames read with ``cv2.imread`` as
                 float32, each aligned to the first with ``cv2.findTransformECC`` (homography,
                 OpenCV's default criteria, started from the previous frame's result), warped
                 with ``cv2.warpPerspective``, summed, divided, written as 8-bit.

Both import nothing but OpenCV and numpy, as the scripts they stand for do, so a timed process
pays only for what such a script pays for. Frames are the folder's image files in name order.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

EXTENSIONS = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}


def frame_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS)


def read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    scale = 65535.0 if image.dtype == np.uint16 else 255.0
    return image[:, :, :3].astype(np.float32) / scale


def ecc_homography(ref_gray: np.ndarray, gray: np.ndarray) -> np.ndarray:
    """The recipe's alignment: one full-frame ECC homography (reference -> frame) from the
    identity, 100 iterations / 1e-6, Gaussian 5. Raises ``cv2.error`` when it does not
    converge."""
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-6)
    warp = np.eye(3, dtype=np.float32)
    _, warp = cv2.findTransformECC(ref_gray, gray, warp, cv2.MOTION_HOMOGRAPHY, criteria, None, 5)
    return warp


def classic_ecc(paths: list[Path]) -> np.ndarray:
    """Full-resolution ECC to the first frame, bilinear warp, plain average."""
    first = read(paths[0])
    h, w = first.shape[:2]
    ref_gray = cv2.cvtColor(first, cv2.COLOR_BGR2GRAY)
    total = first.copy()
    for path in paths[1:]:
        frame = read(path)
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        try:
            warp = ecc_homography(ref_gray, gray)
        except cv2.error:
            warp = np.eye(3, dtype=np.float32)  # the script would stop; we average it unaligned
        total += cv2.warpPerspective(
            frame, warp, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        )
    return total / len(paths)


def auto_stack(paths: list[Path]) -> np.ndarray:
    """ECC to the first frame with the previous frame's transform as the start, warp, average."""
    warp = np.eye(3, 3, dtype=np.float32)
    first_gray, stacked = None, None
    for path in paths:
        image = read(path)
        if first_gray is None:
            first_gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            stacked = image
            continue
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        _, warp = cv2.findTransformECC(gray, first_gray, warp, cv2.MOTION_HOMOGRAPHY)
        h, w = image.shape[:2]
        stacked += cv2.warpPerspective(image, warp, (w, h))
    return stacked / len(paths)


def main() -> None:
    method, folder, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    paths = frame_files(folder)
    image = {"classic-ecc": classic_ecc, "auto-stack": auto_stack}[method](paths)
    cv2.imwrite(str(out), np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8))


if __name__ == "__main__":
    main()
