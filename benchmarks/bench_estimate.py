"""The estimates ``merge``/``run``/``enhance`` print before heavy work, against what the
commands then take: wall time and peak resident memory of each command as its own process.

    python benchmarks/bench_estimate.py             # about 4 minutes on 2 cores
    python benchmarks/bench_estimate.py --full      # adds run on the whole burst (~2.5 min more)
    python benchmarks/bench_estimate.py --large     # adds merge --scale 2 of 12 MP frames (~2 min)

Bursts: the real phone burst of ``data/bursts`` (``make data``) (7 JPEGs of 1600x1200), whole and
cropped; images to enhance are made from its first frame; with ``--large``, the burst's frames
upscaled to 4000x3000 (bicubic, JPEG quality 92) for the memory of the fine-grid merge at 12 MP.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_merge import run_process  # noqa: E402
from datasets import data_dir  # noqa: E402

from burstsr.burst.config import MergeConfig  # noqa: E402
from burstsr.cli.enhance import input_size, job_estimates  # noqa: E402
from burstsr.cli.run import run_estimate  # noqa: E402
from burstsr.estimate import back_projection_estimate, merge_estimate  # noqa: E402
from burstsr.io import load_burst, read_image, write_image  # noqa: E402
from burstsr.io.crop import Crop  # noqa: E402
from burstsr.refiner.checkpoint import load_generator  # noqa: E402

BURSTS = data_dir() / "bursts"
# job_estimates' tile, tile_pad, ensemble, half and streamed for one PNG output (written row by row)
PNG_OUT = (None, None, False, False, [True])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=Path, default=None, help="a burst folder")
    parser.add_argument("--full", action="store_true", help="also run on the whole burst")
    parser.add_argument("--large", action="store_true", help="also merge 12 MP frames x2")
    args = parser.parse_args()
    burst_dir = args.burst or next(p for p in sorted(BURSTS.iterdir()) if p.is_dir())
    cli = [sys.executable, "-m", "burstsr", "-q"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        frame = read_image(load_burst(burst_dir).paths[0]).pixels
        write_image(work / "photo.png", frame[:750, :1000])
        crop = Crop(400, 300, 800, 600)

        def measure(name, estimate, command):
            seconds, peak_mb = run_process(command + ["--max-output-mp", "0"], cwd=work)
            rows.append((name, estimate, seconds, peak_mb))
            print(
                f"{name}: estimated {estimate.describe()}; took {seconds:.1f} s, {peak_mb:.0f} MB"
            )

        burst = load_burst(burst_dir)
        measure(
            "merge (x1), 7 x 1600x1200",
            merge_estimate(burst.frame_size(), len(burst), 1, "cpu", with_torch=False),
            cli + ["merge", str(burst_dir), "-o", "m1.png", "--device", "cpu"],
        )
        cropped = load_burst(burst_dir, crop=crop)
        measure(
            "merge --scale 4, 7 x 800x600",
            merge_estimate(cropped.frame_size(), len(cropped), 4, "cpu", with_torch=True),
            cli + ["merge", str(burst_dir), "--crop", str(crop), "--scale", "4", "-o", "m4.png"],
        )
        measure(
            "merge --scale 2, 7 x 1600x1200",
            merge_estimate(burst.frame_size(), len(burst), 2, "cpu", with_torch=True),
            cli + ["merge", str(burst_dir), "--scale", "2", "-o", "m2.png"],
        )
        fidelity = load_generator("fidelity", device="cpu")
        measure(
            "enhance fidelity, 1000x750",
            job_estimates(fidelity, [input_size(work / "photo.png", None)], *PNG_OUT)[0],
            cli + ["enhance", "photo.png", "-o", "e1.png", "--device", "cpu"],
        )
        write_image(work / "grid.png", read_image(work / "m4.png").pixels)  # no grid note
        grid_model = load_generator("burst", device="cpu")
        measure(
            "enhance burst, 3200x2400 x4-grid merge",
            job_estimates(grid_model, [input_size(work / "grid.png", None)], *PNG_OUT)[0],
            cli + ["enhance", "grid.png", "--model", "burst", "-o", "e2.png", "--device", "cpu"],
        )
        config = MergeConfig(scale=4, kernel="adaptive")
        measure(
            "run (burst), 7 x 800x600",
            run_estimate(cropped, config, grid_model, tile=None, ensemble=False, streamed=True),
            cli + ["run", str(burst_dir), "--crop", str(crop), "-o", "r1.png", "--device", "cpu"],
        )
        held = run_estimate(cropped, config, grid_model, tile=None, ensemble=False, streamed=False)
        measure(
            "run (burst) --back-project on, 7 x 800x600",
            back_projection_estimate(held, len(cropped)),
            cli
            + ["run", str(burst_dir), "--crop", str(crop), "-o", "r3.png", "--device", "cpu"]
            + ["--back-project", "on"],
        )
        if args.full:
            measure(
                "run (burst), 7 x 1600x1200",
                run_estimate(burst, config, grid_model, tile=None, ensemble=False, streamed=True),
                cli + ["run", str(burst_dir), "-o", "r2.png", "--device", "cpu"],
            )
        if args.large:
            big = work / "big"
            big.mkdir()
            for i, path in enumerate(burst.paths):
                image = cv2.imread(str(path))
                image = cv2.resize(image, (4000, 3000), interpolation=cv2.INTER_CUBIC)
                cv2.imwrite(str(big / f"f{i}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
            large = load_burst(big)
            measure(
                "merge --scale 2, 7 x 4000x3000",
                merge_estimate(large.frame_size(), len(large), 2, "cpu", with_torch=True),
                cli + ["merge", str(big), "--scale", "2", "-o", "m12.png"],
            )
    print()
    print("| command | output | estimated time | took | estimated memory | peak memory |")
    print("|---|---|---|---|---|---|")
    for name, est, seconds, peak in rows:
        guess = f"{est.seconds:.1f} s" if est.seconds is not None else "-"
        print(
            f"| {name} | {est.width}x{est.height} | {guess} | {seconds:.1f} s | "
            f"{est.peak_bytes / 1e6:.0f} MB | {peak:.0f} MB |"
        )


if __name__ == "__main__":
    main()
