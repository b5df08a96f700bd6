"""Super-resolution benchmark: does the burst beat a single frame, on simulated and real bursts?

Bursts are simulated from Set14 and Kodak (evaluation sets only; the models never saw them),
8 frames, x4, a fixed seed per image, in two worlds:

  plain    area downsampling, Gaussian noise sigma 0.02, 8-bit (the simulator the first models
           were trained in; burstsr.burst.synth.simulate_burst)
  camera   a camera pipeline: zoom and almost-still frames, lens blur, Bayer mosaic, shot and
           read noise, demosaicing, sRGB, JPEG (burstsr.burst.camera; simulate_camera_burst)

Scored with PSNR and SSIM on the Y channel (BT.601) with a border crop of 4 against the HR image:

  bicubic(frame 0)        one frame upscaled: what a single photo gives
  bicubic(merge)          the burstsr merge (frames' grid) upscaled
  x4-grid merge           burstsr merge --scale 4 (adaptive kernels), no refiner
  run, MODEL              each model on the merge it reads (its grid, kernel and, if it reads
                          one, the confidence map): what burstsr run --model MODEL does

Every run output also gets the periodic-pattern score (burstsr.metrics.periodic_pattern, 8-bit
levels; a screen-door texture on the x4 grid scores high). So do bursts made to be hard (zoom
+-3 %, mostly almost-still frames, 2 frames, 8 identical frames, a frame with a moved object)
and the real phone burst of data/bursts (make data), which is also timed (whole burstsr run
process: wall time and peak memory) and shown in a crop figure.

Also: PSNR of run against the number of frames (1 to 16) on camera bursts of Set14, enhance
speed and the peak memory of enhancing to 24 MP with the default tile (fresh processes), and
detail routing (bench_route.py: speed on merges with flat areas, PSNR cost on Set14/Kodak).

    python benchmarks/bench_sr.py                        # about 15 minutes on 2 CPU cores
    python benchmarks/bench_sr.py --baseline OLD.pt      # also score an earlier model
    python benchmarks/bench_sr.py --candidate new=RUN_DIR --skip-speed --skip-real

One file on purpose (over 300 lines): a benchmark that runs alone, with its data, rows and
figures side by side.
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from burstsr.burst.pipeline import MergeConfig, merge_burst
from burstsr.burst.superres import ACCUMULATORS
from burstsr.device import resolve_device
from burstsr.io import read_image, write_image
from burstsr.metrics import periodic_pattern, psnr, ssim, texture_ratio
from burstsr.naturalness import Pristine, fit_pristine, niqe
from burstsr.refiner.backproject import (
    Observation,
    back_project,
    central_region,
    crop_observations,
    worth_back_projecting,
)
from burstsr.refiner.checkpoint import (
    DEFAULT_RUN_MODEL,
    SHIPPED,
    load_adversarial_start,
    load_generator,
)
from burstsr.refiner.enhance import enhance_image
from burstsr.refiner.plots import line_chart

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bursts  # noqa: E402
from crops import busiest, row  # noqa: E402
from datasets import data_dir  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = data_dir()
SCALE = 4
DEVICE = [torch.device("cpu")]  # --device: where merges and models run


def bicubic(img: np.ndarray, scale: int = SCALE) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None]
    up = F.interpolate(t, scale_factor=scale, mode="bicubic", align_corners=False)
    return up[0].clamp(0, 1).permute(1, 2, 0).numpy()


def merge(
    frames: list[np.ndarray], grid: int = 1, kernel: str = "adaptive"
) -> tuple[np.ndarray, np.ndarray | None, list[Observation]]:
    """``burstsr merge [--scale grid --kernel kernel]``: (image, confidence map or None, the
    frames it used with the motions it found). One frame: itself, on that grid."""
    if len(frames) == 1:
        observations = [Observation(frames[0], np.eye(3))]
        frame = torch.from_numpy(np.ascontiguousarray(frames[0])).permute(2, 0, 1)
        if grid == 1:
            return frames[0], None, observations
        acc = ACCUMULATORS[kernel](frame, grid)
        acc.add(frame, np.eye(3))
        image, confidence = acc.result(frame)
        image = image.clamp(0, 1).permute(1, 2, 0).numpy()
        return image, None if confidence is None else confidence.numpy(), observations
    with tempfile.TemporaryDirectory() as tmp:
        paths = [write_image(Path(tmp) / f"f{i:02d}.png", f) for i, f in enumerate(frames)]
        result = merge_burst(paths, config=MergeConfig(scale=grid, kernel=kernel), device=DEVICE[0])
    observations = [
        Observation(frames[r.index], np.eye(3) if r.transform is None else np.array(r.transform))
        for r in result.frames
        if r.used
    ]
    return result.image, result.confidence, observations


# id(model) -> the model an adversarial model started from: what run's back-projection test
# restores with (burstsr.refiner.checkpoint.load_adversarial_start).
TESTERS: dict = {}


def model_spec(spec: str) -> tuple[str, float | None]:
    """``MODEL[@STRENGTH]`` -> the model and its ``--strength`` (None: not given)."""
    model, _, strength = spec.rpartition("@") if "@" in spec else (spec, "", "")
    return model, float(strength) if strength else None


def load_models(specs: dict[str, str]) -> dict:
    """``{name: MODEL[@STRENGTH]}`` -> ``{name: the model, loaded as run loads it}``, each
    adversarial one with the model it started from as its back-projection tester."""
    models = {
        name: load_generator(model_spec(spec)[0], strength=model_spec(spec)[1]).to(DEVICE[0])
        for name, spec in specs.items()
    }
    ask_with_starts(specs, models)
    return models


def ask_with_starts(paths: dict, models: dict) -> None:
    """Remember, for each adversarial model of ``models`` (loaded from ``paths``, by name:
    ``MODEL[@STRENGTH]``), the model it started from, which :func:`run`'s back-projection test
    restores with."""
    for name, path in paths.items():
        start = load_adversarial_start(model_spec(path)[0], device=DEVICE[0])
        if start is not None:
            TESTERS[id(models[name])] = start


def run(
    model,
    frames: list[np.ndarray],
    *,
    ensemble: bool = False,
    half: bool = False,
    merges: dict | None = None,
    back_projection: bool = True,
    unprojected: list | None = None,
) -> np.ndarray:
    """Merge as the model reads it, then enhance, then back-project where the frames look
    area-sampled (``back_projection``): ``burstsr run --model`` (``--back-project auto`` or
    ``off``). ``merges``: a cache of this burst's merges by (grid, kernel), shared by the
    models that read the same one. ``unprojected``: a list the output before back-projection
    is appended to (the same as ``off`` gives)."""
    reads = model.config.merge_reads()
    key = (reads.get("scale", 1), reads.get("kernel", "adaptive"))
    merges = {} if merges is None else merges
    if key not in merges:
        merges[key] = merge(frames, *key)
    image, confidence, observations = merges[key]
    enhance = functools.partial(enhance_image, model, ensemble=ensemble, half=half)
    out = enhance(image, confidence=confidence)
    if unprojected is not None:
        unprojected.append(out)
    if back_projection and len(frames) > 1 and not model.config.any_scale:
        h, w = frames[0].shape[:2]
        region = central_region(h, w)
        crop = crop_observations(observations, *region)
        grid = image.shape[0] // h
        tester = TESTERS.get(id(model), model)  # an adversarial model's start, as run asks
        test = functools.partial(enhance_image, tester, ensemble=ensemble, half=half)
        if worth_back_projecting(crop, image, test, region, grid=grid, confidence=confidence)[0]:
            out = back_project(out, observations, out.shape[0] // frames[0].shape[0])
    return out


PRISTINE: list[Pristine] = []  # NIQE's pristine model, fitted once in main()


def pristine_model(data: Path, out: Path) -> Pristine:
    """NIQE's pristine model, fitted on the training HR images (T91 + BSD200; cached)."""
    cache = out / "niqe_pristine.npz"
    if cache.is_file():
        return Pristine.load(cache)
    files = sorted((data / "T91").glob("*.png")) + sorted((data / "BSD200").glob("*"))
    images = [read_image(f).pixels for f in files]
    model = fit_pristine([im for im in images if min(im.shape[:2]) >= 192])
    model.save(cache)
    return model


def score(img: np.ndarray, hr: np.ndarray) -> tuple[float, float, float, float]:
    """PSNR-Y, SSIM-Y, the texture ratio (mean |Laplacian| of the luma over the truth's) and
    NIQE (no reference; lower is more natural)."""
    return (
        psnr(img, hr, border=SCALE, y_channel=True),
        ssim(img, hr, border=SCALE, y_channel=True),
        texture_ratio(img, hr, border=SCALE),
        niqe(np.clip(img, 0, 1), PRISTINE[0]) if PRISTINE else float("nan"),
    )


def plain_burst(path: Path, k: int, frames: int = 8):
    return bursts.plain_burst(read_image(path).pixels, k, frames, SCALE)


def camera_burst(path: Path, k: int, frames: int = 8, **ranges):
    return bursts.camera_burst(read_image(path).pixels, k, frames, SCALE, **ranges)


WORLDS = {"plain": plain_burst, "camera": camera_burst}


def quality(
    sets: dict[str, Path], models: dict, world: str, ensemble: bool, half: bool = False
) -> tuple[dict, dict]:
    """(table {set: {method: (psnr, ssim)}}, periodic scores {model label: [score per image]})."""
    table, periodic = {}, {}
    for name, folder in sets.items():
        rows = {}
        for k, path in enumerate(sorted(folder.glob("*.png"))):
            burst = WORLDS[world](path, k)
            merges = {
                key: merge(burst.frames, *key) for key in ((1, "adaptive"), (SCALE, "adaptive"))
            }
            results = {
                "bicubic(frame 0)": bicubic(burst.frames[0]),
                "bicubic(merge)": bicubic(merges[1, "adaptive"][0]),
                f"x{SCALE}-grid merge (adaptive, no network)": merges[SCALE, "adaptive"][0],
            }
            for label, model in models.items():
                before: list = []
                out = run(model, burst.frames, merges=merges, unprojected=before)
                results[f"run, {label}"] = out
                results[f"run, {label} --back-project off"] = before[0]
                periodic.setdefault(label, []).append(periodic_pattern(out))
                if ensemble and label == DEFAULT_RUN_MODEL:
                    results[f"run, {label} --ensemble"] = run(
                        model, burst.frames, ensemble=True, merges=merges
                    )
                if half and label == DEFAULT_RUN_MODEL:
                    results[f"run, {label} --half"] = run(
                        model, burst.frames, half=True, merges=merges
                    )
            for method, img in results.items():
                rows.setdefault(method, []).append(score(img, burst.hr))
            print(f"  {world} {name}: {path.name}", file=sys.stderr, flush=True)
        table[name] = {m: tuple(float(x) for x in np.mean(v, axis=0)) for m, v in rows.items()}
    return table, periodic


def hard_bursts(path: Path) -> dict:
    """Bursts made to be hard, from one image: name -> frames."""
    zoom = camera_burst(path, 1, zoom=0.03)
    still = camera_burst(path, 2, still_share=(0.85, 0.85))
    two = camera_burst(path, 3, frames=2)
    identical = [camera_burst(path, 4).frames[0]] * 8
    moved = [f.copy() for f in camera_burst(path, 5).frames]
    h, w = moved[3].shape[:2]
    moved[3][h // 4 : h // 2, w // 4 : w // 2] = moved[3][h // 4 : h // 2, w // 4 : w // 2][
        ::-1, ::-1
    ]
    return {
        "zoom +-3 %": zoom.frames,
        "85 % almost still": still.frames,
        "2 frames": two.frames,
        "8 identical frames": identical,
        "a frame with a moved object": moved,
    }


def frames_curve(folder: Path, model, counts=(1, 2, 4, 8, 16)) -> dict[int, float]:
    curve = {}
    files = sorted(folder.glob("*.png"))
    for n in counts:
        values = []
        for k, path in enumerate(files):
            burst = camera_burst(path, k, frames=max(counts))  # the same frames, first n of them
            values.append(score(run(model, burst.frames[:n]), burst.hr)[0])
        curve[n] = float(np.mean(values))
        print(f"  frames {n}: {curve[n]:.2f} dB", file=sys.stderr, flush=True)
    return curve


def speed_child(model_name: str, out: Path) -> None:
    """Enhance an image to 6000x4000 (24 MP) with the default tile on ``DEVICE``; report."""
    device = DEVICE[0]
    model = load_generator(model_name).to(device)
    rng = np.random.default_rng(0)
    s = model.config.scale
    image = np.clip(rng.random((4000 // s, 6000 // s, 3)), 0, 1).astype(np.float32)
    if device.type == "cuda":  # the first call on a GPU pays for kernel selection: warm up
        enhance_image(model, image[:256, :256])
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    result = enhance_image(model, image)
    seconds = time.perf_counter() - t0
    peak = next(
        int(line.split()[1]) / 1024
        for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith("VmHWM")
    )
    report = {
        "seconds": seconds,
        "megapixels": result.shape[0] * result.shape[1] / 1e6,
        "peak_mb": peak,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
    }
    if device.type == "cuda":
        report["gpu_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    out.write_text(json.dumps(report))


def real_burst(folder: Path, models: dict[str, str], out: Path) -> dict:
    """``burstsr run`` on a real burst, one fresh process per model (``{label:
    MODEL[@STRENGTH]}``): wall time and peak memory (``/usr/bin/time``'s maximum resident
    set), periodic score; a crop figure."""
    cli = [sys.executable, "-m", "burstsr", "-q", "run", str(folder), "--overwrite"]
    found = {}
    for label, spec in models.items():
        model, strength = model_spec(spec)
        dial = [] if strength is None else ["--strength", str(strength)]
        target, stats = out / f"real_run_{label}.png", out / f"real_run_{label}.time"
        t0 = time.perf_counter()
        timed = ["/usr/bin/time", "-f", "%M", "-o", str(stats)]
        subprocess.run([*timed, *cli, "--model", model, *dial, "-o", str(target)], check=True)
        seconds = time.perf_counter() - t0
        image = read_image(target).pixels
        found[label] = {
            "seconds": seconds,
            "peak_mb": int(stats.read_text().split()[-1]) / 1024,
            "periodic": periodic_pattern(image),
            "size": list(image.shape[:2]),
        }
        print(f"  real burst, {label}: {found[label]}", file=sys.stderr, flush=True)
    frames = [read_image(p).pixels for p in sorted(folder.glob("*.jpg"))]
    size = 60
    y, x = busiest(frames[0], size)
    panels = [bicubic(frames[0][y : y + size, x : x + size])]
    panels.append(bicubic(merge(frames)[0][y : y + size, x : x + size]))
    for label in models:
        image = read_image(out / f"real_run_{label}.png").pixels
        panels.append(image[y * SCALE : (y + size) * SCALE, x * SCALE : (x + size) * SCALE])
    write_image(out / "real_burst.png", row(panels))
    return found


def crops_figure(path: Path, models: dict, out: Path, world: str) -> None:
    """frame 0 bicubic | merge bicubic | each model's run | ground truth: the most detailed
    128 px crop, 2x nearest."""
    burst = WORLDS[world](path, 99)
    panels = [bicubic(burst.frames[0]), bicubic(merge(burst.frames)[0])]
    panels += [run(model, burst.frames) for model in models.values()]
    panels.append(burst.hr)
    size = 128
    y, x = busiest(burst.hr, size)
    write_image(out, row([p[y : y + size, x : x + size] for p in panels], zoom=2))


def print_table(title: str, table: dict) -> None:
    for name, rows in table.items():
        print(f"{title}, {name} (PSNR / SSIM on Y, border {SCALE}; texture ratio; NIQE):\n")
        print("| method | PSNR (dB) | SSIM | texture | NIQE |\n|---|---|---|---|---|")
        for method, (p, s, t, q) in rows.items():
            print(f"| {method} | {p:.2f} | {s:.4f} | {t:.2f} | {q:.2f} |")
        print()
        for label in [m for m in rows if m.startswith("run")]:
            ours = rows[label][0]
            print(
                f"{label}: {ours - rows['bicubic(frame 0)'][0]:+.2f} dB over bicubic(frame 0), "
                f"{ours - rows['bicubic(merge)'][0]:+.2f} dB over bicubic(merge)"
            )
        print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-out")
    parser.add_argument("--baseline", help="an earlier model to score beside the shipped ones")
    parser.add_argument(
        "--candidate",
        action="append",
        default=[],
        help="NAME=MODEL[@STRENGTH]: another model to score (blended at --strength STRENGTH)",
    )
    parser.add_argument("--ensemble", action="store_true", help="also score run --ensemble")
    parser.add_argument(
        "--half", action="store_true", help="also score run --half (bfloat16 on the CPU)"
    )
    parser.add_argument(
        "--no-shipped", action="store_true", help="score only --baseline and --candidate models"
    )
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-real", action="store_true")
    parser.add_argument("--skip-curve", action="store_true")
    parser.add_argument("--skip-routing", action="store_true", help="leave out bench_route.py")
    parser.add_argument("--figures-only", action="store_true", help="only the crop figures")
    parser.add_argument(
        "--device", default="cpu", help="where merges and models run: cpu, cuda or auto"
    )
    parser.add_argument("--speed-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    DEVICE[0] = resolve_device(args.device)
    if args.speed_child:
        speed_child(args.speed_child, args.out / "sr_speed.json")
        return
    args.out.mkdir(parents=True, exist_ok=True)
    paths = {} if args.no_shipped else {name: name for name, f in SHIPPED.items() if f.is_file()}
    if args.baseline:
        paths["before"] = args.baseline
    for item in args.candidate:
        name, _, spec = item.partition("=")
        paths[name] = spec  # MODEL[@STRENGTH]
    if not paths:
        sys.exit("no model: ship one in burstsr/refiner/weights or give --candidate")
    models = load_models(paths)
    sets = {"Set14": args.data / "Set14", "Kodak": args.data / "Kodak"}
    PRISTINE.append(pristine_model(args.data, args.out))
    print(f"# bench_sr (x{SCALE}, 8 frames; torch {torch.__version__})\n")
    report: dict = {"models": paths}
    if args.figures_only:
        for world, name in (("plain", "sr_crops.png"), ("camera", "sr_crops_camera.png")):
            crops_figure(sets["Kodak"] / "kodim23.png", models, args.out / name, world)
        return
    for world in WORLDS:
        table, periodic = quality(sets, models, world, args.ensemble, args.half)
        print_table(world, table)
        report[world] = {"table": table, "periodic": periodic}
    print("Periodic-pattern score of run's output (8-bit levels; mean / max over the images):\n")
    print("| model | plain | camera |\n|---|---|---|")
    for label in models:
        cells = [report[w]["periodic"][label] for w in WORLDS]
        print(
            f"| {label} | "
            + " | ".join(f"{np.mean(c):.3f} / {np.max(c):.3f}" for c in cells)
            + " |"
        )
    print()
    hard = hard_bursts(sets["Kodak"] / "kodim23.png")
    print("Hard camera bursts of kodim23 (periodic score of run's output; PSNR-Y):\n")
    print("| burst | " + " | ".join(models) + " |\n|---" * 1 + "|---" * len(models) + "|")
    hr = camera_burst(sets["Kodak"] / "kodim23.png", 1).hr
    report["hard"] = {}
    for name, frames in hard.items():
        cells = []
        for label, model in models.items():
            out = run(model, frames)
            value = (periodic_pattern(out), score(out, hr)[0])
            report["hard"].setdefault(name, {})[label] = value
            cells.append(f"{value[0]:.3f}; {value[1]:.2f} dB")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    crops_figure(sets["Kodak"] / "kodim23.png", models, args.out / "sr_crops.png", "plain")
    crops_figure(sets["Kodak"] / "kodim23.png", models, args.out / "sr_crops_camera.png", "camera")
    if not args.skip_curve:
        model = models.get(DEFAULT_RUN_MODEL) or next(iter(models.values()))
        curves = {"camera": frames_curve(sets["Set14"], model)}
        print("run on camera bursts of Set14 against the number of frames (PSNR, dB):\n")
        counts = list(curves["camera"])
        print("| frames | " + " | ".join(str(n) for n in counts) + " |")
        print("|---" * (len(counts) + 1) + "|")
        print("| PSNR | " + " | ".join(f"{v:.2f}" for v in curves["camera"].values()) + " |\n")
        chart = line_chart(
            "PSNR (Y, dB) of burstsr run, camera bursts of Set14, vs frames",
            {"run": (counts, list(curves["camera"].values()))},
            log_y=False,
            x_label="frames",
        )
        write_image(args.out / "sr_frames.png", chart.astype(np.float32) / 255)
        report["frames"] = curves
    real = args.data / "bursts" / "hdrplus_0006_20160722_115157_431"
    if not args.skip_real and real.is_dir():
        runs = {k: v for k, v in paths.items() if models[k].config.unshuffle > 1}
        report["real"] = real_burst(real, runs, args.out)
        print("burstsr run on the real phone burst (whole process):\n")
        print("| model | output | time | peak memory | periodic score |\n|---|---|---|---|---|")
        for label, r in report["real"].items():
            print(
                f"| {label} | {r['size'][1]}x{r['size'][0]} | {r['seconds']:.0f} s | "
                f"{r['peak_mb']:.0f} MB | "
                f"{r['periodic']:.3f} |"
            )
        print()
    if not args.skip_speed:
        report["speed"] = {}
        for name in [n for n in paths if n in SHIPPED]:
            subprocess.run(
                [
                    *(sys.executable, __file__, "--speed-child", name, "--out", str(args.out)),
                    *("--device", args.device),
                ],
                check=True,
            )
            report["speed"][name] = result = json.loads((args.out / "sr_speed.json").read_text())
            print(
                f"{name} on {result['device']}: enhance to {result['megapixels']:.0f} MP with the "
                "default tile: "
                f"{result['seconds']:.1f} s, {result['megapixels'] / result['seconds']:.2f} output "
                f"MP/s, peak memory {result['peak_mb']:.0f} MB"
            )
    (args.out / "sr.json").write_text(json.dumps(report, indent=2))
    if not args.skip_routing and not args.no_shipped:
        import bench_route

        bench_route.main(["--out", str(args.out)])


if __name__ == "__main__":
    main()
