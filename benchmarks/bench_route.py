"""Detail routing (``--route``): how much faster, and how much PSNR it costs.

    python benchmarks/bench_route.py                 # about 15 minutes on 2 CPU cores
    python benchmarks/bench_route.py --skip-quality  # only the timed merges

1. Quality: Set14 and Kodak bursts (8 frames, x4; plain and camera-realistic, as in
   bench_sr.py), merged on the x4 grid, restored by ``burst`` without and with routing: PSNR-Y
   (border 4) and the share of tiles the deep model ran on.
2. Speed on merges with flat areas: the real phone burst (``data/bursts``) and a night-like
   simulated burst (a dark, noisy scene with a few lit windows), merged on the x4 grid, then
   ``enhance_image`` without and with routing (default threshold): seconds of each pass, the
   routed share, the speed-up; the routing map of the real burst is written beside its image.

bench_sr.py runs this too (``--skip-routing`` leaves it out).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bursts import world_burst  # noqa: E402
from datasets import BURST_NAME, data_dir  # noqa: E402

from burstsr.burst.camera import CameraRanges  # noqa: E402
from burstsr.burst.config import MergeConfig  # noqa: E402
from burstsr.burst.pipeline import merge_burst  # noqa: E402
from burstsr.burst.synth import simulate_camera_burst  # noqa: E402
from burstsr.io import read_image, write_image  # noqa: E402
from burstsr.metrics import periodic_pattern, psnr  # noqa: E402
from burstsr.refiner.checkpoint import load_generator  # noqa: E402
from burstsr.refiner.context import needed_context  # noqa: E402
from burstsr.refiner.enhance import enhance_image  # noqa: E402
from burstsr.refiner.registry import COARSE  # noqa: E402
from burstsr.refiner.route import DEFAULT_THRESHOLD, LUMA, Routing, route_map  # noqa: E402

SCALE = 4
GRID = MergeConfig(scale=SCALE, kernel="adaptive")


def _merge(frames: list[np.ndarray], folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    for i, frame in enumerate(frames):
        write_image(folder / f"f{i:02d}.png", frame)
    return merge_burst(folder, config=GRID)


def _routed(model, coarse, image, confidence, threshold) -> tuple[np.ndarray, Routing, float]:
    routing = Routing(coarse, threshold)
    t0 = time.perf_counter()
    out = enhance_image(model, image, confidence=confidence, routing=routing)
    return out, routing, time.perf_counter() - t0


def quality(model, coarse, thresholds: list[float], work: Path) -> dict:
    """Mean PSNR-Y unrouted / routed and the routed share, per set, world and threshold."""
    table = {}
    for name in ("Set14", "Kodak"):
        for world in ("plain", "camera"):
            rows = []
            for k, path in enumerate(sorted((data_dir() / name).glob("*.png"))):
                hr = read_image(path).pixels
                burst = world_burst(world, hr, k, scale=SCALE)
                merged = _merge(burst.frames, work / "q")
                plain = enhance_image(model, merged.image, confidence=merged.confidence)
                row = [psnr(plain, burst.hr, border=SCALE, y_channel=True)]
                for threshold in thresholds:
                    routed, routing, _ = _routed(
                        model, coarse, merged.image, merged.confidence, threshold
                    )
                    row += [psnr(routed, burst.hr, border=SCALE, y_channel=True), routing.fraction]
                rows.append(row)
            mean = np.mean(rows, axis=0)
            for i, threshold in enumerate(thresholds):
                routed, share = mean[1 + 2 * i], mean[2 + 2 * i]
                table[(name, world, threshold)] = (mean[0], routed, share)
                print(
                    f"  {world} {name}, threshold {threshold:g}: unrouted {mean[0]:.3f} dB, "
                    f"routed {routed:.3f} dB ({routed - mean[0]:+.3f}), deep model on "
                    f"{100 * share:.0f}% of tiles",
                    file=sys.stderr,
                    flush=True,
                )
    return table


def night_scene(h: int = 2400, w: int = 3200, seed: int = 0) -> np.ndarray:
    """A dark sky over a dark building with a few lit, textured windows (linear-ish sRGB)."""
    rng = np.random.default_rng(seed)
    ys = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    image = np.broadcast_to(0.02 + 0.04 * ys * np.array([0.6, 0.7, 1.0], np.float32), (h, w, 3))
    image = image.copy()
    image[h // 2 :, w // 8 : 7 * w // 8] = 0.03  # the building
    kodak = read_image(data_dir() / "Kodak" / "kodim08.png").pixels
    for _ in range(12):
        y = int(rng.integers(h // 2 + 40, h - 240))
        x = int(rng.integers(w // 8 + 40, 7 * w // 8 - 320))
        ky, kx = int(rng.integers(0, kodak.shape[0] - 200)), int(rng.integers(0, 400))
        image[y : y + 200, x : x + 280] = 0.8 * kodak[ky : ky + 200, kx : kx + 280]
    return image


def coarse_everywhere(plain: np.ndarray, coarse_out: np.ndarray, cell: int) -> dict:
    """How far the coarse network's output is from the deep model's, cell by cell (``cell``
    output pixels square): the share of cells within 1 / 2 / 4 levels (RMS of the luma, 8-bit)
    and, were the cells closest to the deep output given to the coarse network until only 30 %
    of the area were left deep (about what 2x needs, the coarse network costing a fifth of the
    deep model), the largest cell difference and the whole image's RMS change. An oracle: no
    score can pick cells better than by their actual difference."""
    diff = (plain - coarse_out) @ LUMA * 255
    gh, gw = diff.shape[0] // cell, diff.shape[1] // cell
    cells = diff[: gh * cell, : gw * cell].reshape(gh, cell, gw, cell)
    rms = np.sort(np.sqrt(np.square(cells).mean(axis=(1, 3))).ravel())
    kept = rms[: int(0.7 * rms.size)]
    return {
        "within": {t: float(np.mean(rms <= t)) for t in (1.0, 2.0, 4.0)},
        "70% coarse: largest cell": float(kept[-1]),
        "70% coarse: image rms": float(np.sqrt(np.square(kept).sum() / rms.size)),
    }


def speed(model, coarse, threshold: float, work: Path, out: Path) -> dict:
    """Unrouted and routed enhance of real and night-like x4-grid merges."""
    bursts = {}
    real = data_dir() / "bursts" / BURST_NAME
    if real.is_dir():
        bursts["real phone burst"] = merge_burst(real, config=GRID)
    ranges = CameraRanges(frames=(8, 8), shot=(3e-3, 1e-2))
    night = simulate_camera_burst(night_scene(), scale=SCALE, ranges=ranges, seed=7)
    bursts["night-like simulated burst"] = _merge(night.frames, work / "night")
    # Both models' tile context is measured once per process (refiner/context.py); measured
    # here, so that neither timed pass pays it.
    t0 = time.perf_counter()
    needed_context(model), needed_context(coarse)
    print(f"  tile context measured in {time.perf_counter() - t0:.2f} s", file=sys.stderr)
    found = {}
    for name, merged in bursts.items():
        t0 = time.perf_counter()
        plain = enhance_image(model, merged.image, confidence=merged.confidence)
        unrouted = time.perf_counter() - t0
        routed, routing, seconds = _routed(
            model, coarse, merged.image, merged.confidence, threshold
        )
        h, w = merged.image.shape[:2]
        found[name] = {
            "size": f"{w}x{h}",
            "unrouted": unrouted,
            "routed": seconds,
            "scoring": routing.seconds["score"],
            "tiles": routing.seconds["tiles"],
            "share": routing.fraction,
            "difference": float(np.abs(routed - plain).mean() * 255),
            # The periodic-pattern score (8-bit levels) of the top third (sky), unrouted / routed.
            "periodic top": (periodic_pattern(plain[: h // 3]), periodic_pattern(routed[: h // 3])),
            "periodic": (periodic_pattern(plain), periodic_pattern(routed)),
        }
        # The coarse network alone everywhere (no threshold reaches it), against the deep.
        everywhere, _, _ = _routed(model, coarse, merged.image, merged.confidence, np.inf)
        found[name]["oracle"] = coarse_everywhere(plain, everywhere, 32 * SCALE)
        print(f"  {name}: {found[name]}", file=sys.stderr, flush=True)
        if name == "real phone burst":
            small = cv2.resize(merged.image, (w // 8, h // 8), interpolation=cv2.INTER_AREA)
            shown = route_map(merged.image, routing).astype(np.float32) / 255
            shown = cv2.resize(shown, (w // 8, h // 8), interpolation=cv2.INTER_AREA)
            write_image(out / "route_map.png", np.hstack([small, shown]))
    return found


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="burst")
    parser.add_argument("--coarse", default=None, help="[default: the one shipped beside]")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument(
        "--thresholds", type=float, nargs="+", default=None, help="quality part [--threshold]"
    )
    parser.add_argument("--out", type=Path, default=HERE.parent / "bench-out")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    model = load_generator(args.model)
    coarse = load_generator(args.coarse or COARSE[args.model])
    work = args.out / "route-work"
    report = {
        "speed": {} if args.skip_speed else speed(model, coarse, args.threshold, work, args.out)
    }
    if not args.skip_quality:
        report["quality"] = quality(model, coarse, args.thresholds or [args.threshold], work)
    print(f"\nthreshold {args.threshold:g} levels\n")
    print("| merge | size | unrouted | routed | scoring | tiles | deep share | speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in report["speed"].items():
        print(
            f"| {name} | {r['size']} | {r['unrouted']:.1f} s | {r['routed']:.1f} s | "
            f"{r['scoring']:.1f} s | {r['tiles']:.1f} s | {100 * r['share']:.0f}% | "
            f"{r['unrouted'] / r['routed']:.2f}x |"
        )
    print("\nThe coarse network everywhere against the deep model, cells of 32 frame pixels:\n")
    print("| merge | cells within 1 / 2 / 4 levels | 70 % coarse: largest cell, image RMS |")
    print("|---|---|---|")
    for name, r in report["speed"].items():
        o = r["oracle"]
        within = " / ".join(f"{100 * v:.0f}%" for v in o["within"].values())
        print(
            f"| {name} | {within} | {o['70% coarse: largest cell']:.2f} / "
            f"{o['70% coarse: image rms']:.2f} levels |"
        )
    if "quality" in report:
        print("\n| set | world | threshold | unrouted PSNR-Y | routed | difference | deep share |")
        print("|---|---|---|---|---|---|---|")
        for (name, world, t), (a, b, share) in report["quality"].items():
            print(
                f"| {name} | {world} | {t:g} | {a:.3f} | {b:.3f} | {b - a:+.3f} | "
                f"{100 * share:.0f}% |"
            )
    return report


if __name__ == "__main__":
    main()
