"""Re-create ``examples/burst``: 8 frames simulated from Kodak's kodim23 (the parrots).

The 768x512 image is area-downsampled by 2 (to 384x256) through ``burstsr.burst.synth``: each
frame is moved by a random handheld motion (up to 2 px of shift and 0.5 degrees of rotation),
given Gaussian noise of standard deviation 0.03 and rounded to 8 bits. Frame 0 is the reference.
The true transforms go to ``examples/burst/truth.json``.

    python examples/make_example_burst.py [--kodak data/Kodak]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from burstsr.burst.synth import simulate_burst
from burstsr.io import read_image, write_image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "benchmarks"))
from datasets import data_dir  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kodak", type=Path, default=data_dir() / "Kodak")
    parser.add_argument("--out", type=Path, default=HERE / "burst")
    args = parser.parse_args()
    hr = read_image(args.kodak / "kodim23.png").pixels
    burst = simulate_burst(hr, frames=8, scale=2, noise=0.03, shift=2.0, rotate=0.5, seed=23)
    args.out.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(burst.frames):
        write_image(args.out / f"frame_{i:02d}.png", frame)
    clean = np.clip(burst.clean, 0, 1)
    write_image(HERE / "burst_clean_reference.png", clean)
    truth = {
        "source": "Kodak kodim23.png (768x512), area-downsampled x2",
        "noise_sigma": 0.03,
        "convention": "3x3, reference (frame_00) pixel coordinates -> frame pixel coordinates",
        "transforms": {f"frame_{i:02d}.png": t.tolist() for i, t in enumerate(burst.transforms)},
    }
    (args.out / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    print(f"wrote {len(burst.frames)} frames of {clean.shape[1]}x{clean.shape[0]} to {args.out}")


if __name__ == "__main__":
    main()
