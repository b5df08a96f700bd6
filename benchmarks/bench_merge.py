"""Merge benchmark: burstsr against the classic stacking recipe, Hugin and an oracle.

Parts (each can be skipped):

0. Whole processes (``--skip-process``): ``burstsr merge`` against two stacking scripts
   (``benchmarks/stack_scripts.py``: an auto_stack-style ECC script and the classic
   full-resolution ECC recipe), each run as its own process from the files, as a user runs it:
   start-up, decoding and writing included. Bursts: the real phone burst (``make data``) resized
   to ~1 MP, a simulated 1 MP JPEG burst, a 6 MP burst smooth at the pixel scale (an image
   upscaled x4) and the 12 MP mosaic of part 2. ``--checkout DIR`` runs another burstsr source
   tree beside this one (e.g. an earlier commit, for before/after figures).
1. Kodak: each of the 24 Kodak images, area-downsampled x4 (192x128 frames), 8 frames with
   handheld motion (2 px, 1 degree), Gaussian noise sigma 0.02 and 0.05, 8-bit.
2. Large: 8 frames of 12 MP (a mosaic of the Kodak images at native resolution), sigma 0.02,
   8 px / 0.5 degree motion, as PNG files on disk. Each method runs in its own process, from the
   files, so its wall time includes decoding and its peak memory (max RSS) is its own.
3. Ghosting: a moving object, every merge method.
4. Merging onto a finer grid (x2, x4) against bicubic upscaling of the merge.

Methods of parts 1 and 2:
  classic-ecc   the image-stacking script recipe: full-resolution cv2.findTransformECC
                (homography, identity start, 100 iterations / 1e-6, Gaussian 5), bilinear
                cv2.warpPerspective, plain average of the warped frames (black borders included)
  classic-orb   the same with ORB keypoints (cv2.ORB_create defaults), cross-checked brute-force
                matching and a RANSAC homography (threshold 5 px)
  hugin         Hugin's align_image_stack --align-to-first, then the mean of its remapped frames
                where their alpha is set (left out when align_image_stack is not installed)
  oracle        frames warped back with the *true* transforms by burstsr's warp, masked mean
  burstsr       burstsr.merge_burst with its defaults (auto alignment, homography, bicubic,
                robust merge; on the CPU)

PSNR is against the noise-free reference frame on the area at least 8 px (Kodak) / 40 px (large)
from the border, so every method is scored where every frame can cover. Gain is PSNR(merge) -
PSNR(frame 0); "of limit" is that gain over 10*log10(N). Registration error is the RMS corner
displacement of the estimated transforms against the truth. ms/MP/frame is wall time divided by
megapixels and frames.

    python benchmarks/bench_merge.py                 # everything (about 15 minutes on 2 cores)
    python benchmarks/bench_merge.py --skip-kodak --skip-large --skip-ghosting --skip-superres
    python benchmarks/bench_merge.py --images 6 --skip-large --skip-process

One file on purpose (over 300 lines): a benchmark that runs alone, from a checkout, with its
methods, data and tables side by side.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from burstsr.burst.merge import merge_mean
from burstsr.burst.pipeline import MergeConfig, merge_burst
from burstsr.burst.synth import corner_error, move_image, random_transform, simulate_burst
from burstsr.burst.warp import warp_frame
from burstsr.io import read_image, write_image
from burstsr.metrics import psnr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import BURST_NAME, data_dir  # noqa: E402
from stack_scripts import ecc_homography  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KODAK = data_dir() / "Kodak"
METHODS = (
    "classic-ecc",
    "classic-orb",
    "hugin",
    "oracle-bilinear",
    "oracle",
    "burstsr-mean",
    "burstsr",
)


# ---------------------------------------------------------------------------------------------
# The methods. Each takes frame files (and the truth, for the oracle) and returns an Outcome.


@dataclass
class Outcome:
    image: np.ndarray  # float32 (H, W, 3)
    transforms: list[np.ndarray] | None  # estimated, reference -> frame; None if not known
    failed: int = 0  # frames the method could not align
    align_seconds: float | None = None  # time spent estimating transforms, when separable


def _gray(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


def classic(paths: list[Path], method: str) -> Outcome:
    """The classic recipe: align to the first frame at full resolution, warp, average."""
    first = read_image(paths[0]).pixels
    h, w = first.shape[:2]
    total = first.astype(np.float32).copy()
    ref_gray = _gray(first)
    transforms, failed, align_seconds = [np.eye(3)], 0, 0.0
    t0 = time.perf_counter()
    if method == "orb":
        orb = cv2.ORB_create()
        ref8 = np.clip(ref_gray * 255, 0, 255).astype(np.uint8)
        kp1, d1 = orb.detectAndCompute(ref8, None)
    align_seconds += time.perf_counter() - t0
    for path in paths[1:]:
        frame = read_image(path).pixels
        gray = _gray(frame)
        t0 = time.perf_counter()
        try:
            if method == "ecc":
                warp = ecc_homography(ref_gray, gray).astype(np.float64)
            else:
                kp2, d2 = orb.detectAndCompute(np.clip(gray * 255, 0, 255).astype(np.uint8), None)
                matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(d1, d2)
                src = np.float32([kp1[m.queryIdx].pt for m in matches])
                dst = np.float32([kp2[m.trainIdx].pt for m in matches])
                warp, _ = cv2.findHomography(src, dst, cv2.RANSAC, 5.0)
                if warp is None:
                    raise cv2.error("no homography")
        except (cv2.error, TypeError):
            failed += 1  # the scripts stop here; we count it and average the frame unaligned
            warp = np.eye(3)
        align_seconds += time.perf_counter() - t0
        transforms.append(warp)
        total += cv2.warpPerspective(
            frame, warp, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        )
    return Outcome(total / len(paths), transforms, failed, align_seconds)


def hugin(paths: list[Path], workdir: Path, scale: int) -> Outcome:
    """align_image_stack, then the mean of the remapped frames where their alpha is set."""
    prefix = workdir / "al_"
    subprocess.run(
        [
            "align_image_stack",
            "--align-to-first",
            "-s",
            str(scale),
            "-a",
            str(prefix),
            *map(str, paths),
        ],
        check=True,
        capture_output=True,
    )
    total = count = None
    for out in sorted(workdir.glob("al_*.tif")):
        img = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
        scale_max = 65535.0 if img.dtype == np.uint16 else 255.0
        rgb = img[:, :, 2::-1].astype(np.float32) / scale_max
        alpha = (img[:, :, 3] > 0).astype(np.float32)[:, :, None]
        total = rgb * alpha if total is None else total + rgb * alpha
        count = alpha if count is None else count + alpha
        out.unlink()
    return Outcome(total / np.maximum(count, 1), None)


def oracle(paths: list[Path], truth: list[np.ndarray], interpolation: str) -> Outcome:
    """Warp every frame back with its true transform (burstsr's warp), masked mean."""

    def frames():
        for path, t in zip(paths, truth, strict=True):
            img = torch.from_numpy(read_image(path).pixels).permute(2, 0, 1)
            yield warp_frame(img, t, interpolation=interpolation)

    return Outcome(merge_mean(frames()).image.permute(1, 2, 0).numpy(), list(truth), 0, 0.0)


# What the "burstsr" rows measure, pinned: the defaults of `burstsr merge` at the time of writing.
BURSTSR = MergeConfig(align="auto", motion="homography", merge="robust", interpolation="bicubic")


def burstsr(paths: list[Path], config: MergeConfig = BURSTSR) -> Outcome:
    result = merge_burst(paths, config=config)
    transforms = [np.array(f.transform) if f.transform else np.eye(3) for f in result.frames]
    return Outcome(
        result.image, transforms, sum(not f.used for f in result.frames), result.seconds["align"]
    )


def run_method(
    name: str, paths: list[Path], truth: list[np.ndarray], workdir: Path, hugin_scale: int
) -> tuple:
    if name == "classic-ecc":
        return classic(paths, "ecc")
    if name == "classic-orb":
        return classic(paths, "orb")
    if name == "hugin":
        return hugin(paths, workdir, hugin_scale)
    if name == "oracle":
        return oracle(paths, truth, "bicubic")
    if name == "oracle-bilinear":
        return oracle(paths, truth, "bilinear")
    if name == "burstsr-mean":  # the classic stack's plain average, burstsr's alignment
        return burstsr(paths, dataclasses.replace(BURSTSR, merge="mean"))
    return burstsr(paths)


def score(outcome: Outcome, clean, frame0, truth, border: int) -> dict:
    """PSNR of the merge and of frame 0 against the clean reference (inside ``border``), and
    the RMS corner error of the estimated transforms."""
    crop = (slice(border, -border), slice(border, -border))
    single = psnr(frame0[crop], clean[crop])
    merged = psnr(np.clip(outcome.image, 0, 1)[crop], clean[crop])
    reg = None
    if outcome.transforms is not None:
        errs = [
            corner_error(t, g, clean.shape[:2])
            for t, g in zip(outcome.transforms[1:], truth[1:], strict=True)
        ]
        reg = float(np.sqrt(np.mean(np.square(errs))))
    return {"psnr": merged, "gain": merged - single, "reg": reg}


# ---------------------------------------------------------------------------------------------
# Part 1: Kodak


def bench_kodak(
    kodak: Path, images: int, sigmas: list[float], out: Path, methods: list[str]
) -> dict:
    rows = {}
    files = sorted(kodak.glob("kodim*.png"))[:images]
    n = 8
    for sigma in sigmas:
        stats = {m: {"psnr": [], "gain": [], "reg": [], "ms": [], "failed": 0} for m in methods}
        for k, file in enumerate(files):
            hr = read_image(file).pixels
            burst = simulate_burst(
                hr, frames=n, scale=4, noise=sigma, shift=2.0, rotate=1.0, seed=1000 + k
            )
            with tempfile.TemporaryDirectory() as tmp:
                tmp = Path(tmp)
                paths = [
                    write_image(tmp / f"f{i}.png", f, bit_depth=16)
                    for i, f in enumerate(burst.frames)
                ]
                mp = burst.clean.shape[0] * burst.clean.shape[1] / 1e6
                for m in methods:
                    t0 = time.perf_counter()
                    outcome = run_method(m, paths, burst.transforms, tmp, 0)
                    ms = (time.perf_counter() - t0) * 1000 / mp / n
                    s = score(outcome, burst.clean, burst.frames[0], burst.transforms, 8)
                    for key in ("psnr", "gain"):
                        stats[m][key].append(s[key])
                    if s["reg"] is not None:
                        stats[m]["reg"].append(s["reg"])
                    stats[m]["ms"].append(ms)
                    stats[m]["failed"] += outcome.failed
            print(f"  sigma {sigma}: {file.name} done", file=sys.stderr, flush=True)
        rows[sigma] = {
            m: {
                "psnr": float(np.mean(v["psnr"])),
                "gain": float(np.mean(v["gain"])),
                "reg": float(np.sqrt(np.mean(np.square(v["reg"])))) if v["reg"] else None,
                "ms": float(np.median(v["ms"])),
                "failed": v["failed"],
            }
            for m, v in stats.items()
        }
    limit = 10 * np.log10(n)
    lines = [
        f"Kodak x4 bursts: {len(files)} images, {n} frames of 192x128 "
        f"(gain limit 10*log10({n}) = {limit:.2f} dB)",
        "",
    ]
    for sigma, table in rows.items():
        lines += [
            f"sigma {sigma}:",
            "",
            "| method | PSNR (dB) | gain (dB) | of limit | reg. error (px) | ms/MP/frame "
            "| frames failed |",
            "|---|---|---|---|---|---|---|",
        ]
        for m, r in table.items():
            reg = f"{r['reg']:.3f}" if r["reg"] is not None else "n/a"
            lines.append(
                f"| {m} | {r['psnr']:.2f} | {r['gain']:+.2f} | "
                f"{r['gain'] / limit:.0%} | {reg} | {r['ms']:.0f} | {r['failed']} |"
            )
        psnrs = {m: r["psnr"] for m, r in table.items()}
        pairs = [
            ("burstsr", "oracle", "burstsr - oracle (same bicubic warp)"),
            ("burstsr", "hugin", "burstsr - hugin"),
            ("oracle", "oracle-bilinear", "bicubic - bilinear oracle"),
        ]
        said = [f"{t}: {psnrs[a] - psnrs[b]:+.2f} dB" for a, b, t in pairs if {a, b} <= set(psnrs)]
        lines += ["", "; ".join(said), ""]
    text = "\n".join(lines)
    (out / "kodak.json").write_text(json.dumps({str(k): v for k, v in rows.items()}, indent=2))
    return {"text": text, "rows": rows}


# ---------------------------------------------------------------------------------------------
# Part 2: one large burst, each method in its own process


def mosaic(kodak: Path, size: tuple[int, int] = (3000, 4000)) -> np.ndarray:
    """A 12 MP scene with native detail: the Kodak images tiled at their own resolution
    (portrait ones turned), so the frames have detail up to the pixel scale as photos do."""
    tiles = []
    for file in sorted(kodak.glob("kodim*.png")):
        img = read_image(file).pixels
        tiles.append(np.rot90(img) if img.shape[0] > img.shape[1] else img)
    h, w = size
    rows, cols = -(-h // 512), -(-w // 768)
    grid = [[tiles[(r * cols + c) % len(tiles)] for c in range(cols)] for r in range(rows)]
    return np.ascontiguousarray(np.vstack([np.hstack(row) for row in grid])[:h, :w])


def make_large(kodak: Path, folder: Path) -> None:
    if (folder / "truth.json").exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    burst = simulate_burst(
        mosaic(kodak), frames=8, scale=1, noise=0.02, shift=8.0, rotate=0.5, seed=5
    )
    for i, frame in enumerate(burst.frames):
        write_image(folder / f"frame_{i}.png", frame)
    write_image(folder.parent / "large_clean.png", burst.clean, bit_depth=16)
    (folder / "truth.json").write_text(json.dumps([t.tolist() for t in burst.transforms]))


def _peak_rss_mb() -> float:
    """This process's own peak resident memory (VmHWM), not inherited from a parent."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def large_child(method: str, folder: Path, result: Path) -> None:
    """Run one method on the large burst (inside its own process) and save what it made."""
    paths = sorted(folder.glob("frame_*.png"))
    truth = [np.array(t) for t in json.loads((folder / "truth.json").read_text())]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        outcome = run_method(method, paths, truth, Path(tmp), 1)
        seconds = time.perf_counter() - t0
    transforms = outcome.transforms
    np.save(result.with_suffix(".npy"), outcome.image.astype(np.float32))
    summary = {
        "seconds": seconds,
        "align_seconds": outcome.align_seconds,
        "failed": outcome.failed,
        "peak_mb": _peak_rss_mb(),
        "transforms": None if transforms is None else [t.tolist() for t in transforms],
    }
    result.write_text(json.dumps(summary))


def bench_large(kodak: Path, out: Path, methods: list[str]) -> dict:
    folder = out / "large"
    make_large(kodak, folder)
    clean = read_image(out / "large_clean.png").pixels
    frame0 = read_image(folder / "frame_0.png").pixels
    truth = [np.array(t) for t in json.loads((folder / "truth.json").read_text())]
    rows = {}
    for m in methods:
        result = out / f"large_{m}.json"
        child = subprocess.run([sys.executable, __file__, "--large-child", m, "--out", str(out)])
        if child.returncode != 0:
            rows[m] = None
            continue
        data = json.loads(result.read_text())
        transforms = data["transforms"]
        outcome = Outcome(
            np.load(result.with_suffix(".npy")),
            None if transforms is None else [np.array(t) for t in transforms],
            data["failed"],
        )
        rows[m] = {
            **score(outcome, clean, frame0, truth, 40),
            "seconds": data["seconds"],
            "align_seconds": data["align_seconds"],
            "failed": data["failed"],
            "ms": data["seconds"] * 1000 / 12.0 / 8,
            "peak_mb": data["peak_mb"],
        }
        result.with_suffix(".npy").unlink()
        print(f"  large: {m} done in {data['seconds']:.1f} s", file=sys.stderr, flush=True)
    lines = [
        "Large burst: 8 frames of 4000x3000 (12 MP; a mosaic of the Kodak images at native "
        "resolution), sigma 0.02, 8 px / 0.5 degree motion, read from PNG files",
        "",
        "| method | PSNR (dB) | gain (dB) | reg. error (px) | seconds | of which aligning "
        "| ms/MP/frame | peak memory (MB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m, r in rows.items():
        if r is None:
            lines.append(f"| {m} | failed | | | | | | |")
            continue
        reg = f"{r['reg']:.4f}" if r["reg"] is not None else "n/a"
        align = f"{r['align_seconds']:.1f}" if r["align_seconds"] is not None else "n/a"
        lines.append(
            f"| {m} | {r['psnr']:.2f} | {r['gain']:+.2f} | {reg} | {r['seconds']:.1f} "
            f"| {align} | {r['ms']:.0f} | {r['peak_mb']:.0f} |"
        )
    ours, ecc = rows.get("burstsr"), rows.get("classic-ecc")
    if ours and ecc:
        lines += [
            "",
            f"classic-ecc / burstsr: wall time {ecc['seconds'] / ours['seconds']:.1f}x, "
            f"alignment time {ecc['align_seconds'] / ours['align_seconds']:.1f}x, "
            f"registration error {ecc['reg'] / ours['reg']:.2f}x",
        ]
    (out / "large.json").write_text(json.dumps(rows, indent=2))
    return {"text": "\n".join(lines), "rows": rows}


# ---------------------------------------------------------------------------------------------
# Part 2b: whole processes, as a user runs them (start-up, decoding and writing included)

SCRIPTS = ROOT / "benchmarks" / "stack_scripts.py"
REAL_BURST = data_dir() / "bursts" / BURST_NAME


@dataclass
class ProcessBurst:
    name: str
    folder: Path
    clean: Path | None  # the noise-free reference frame, when the burst is simulated
    border: int  # pixels left out of the PSNR at each edge
    about: str


def make_process_bursts(kodak: Path, out: Path) -> list[ProcessBurst]:
    """The bursts the whole-process comparison runs on (made once, kept in ``out``)."""
    bursts = []
    real = out / "real-1mp"
    if REAL_BURST.is_dir():
        if not real.is_dir():
            real.mkdir(parents=True)
            for file in sorted(REAL_BURST.glob("*.jpg")):
                img = cv2.resize(cv2.imread(str(file)), (1200, 900), interpolation=cv2.INTER_AREA)
                cv2.imwrite(str(real / file.name), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        bursts.append(
            ProcessBurst(
                "real-1mp", real, None, 0, "the real phone burst (7 JPEGs) resized to 1200x900"
            )
        )
    specs = [
        ("sim-1mp", "kodim21.png", (1200, 800), 8, 4.0, "jpg", 16),
        ("smooth-6mp", "kodim05.png", (3072, 2048), 8, 8.0, "png", 40),
    ]
    for name, source, size, frames, shift, ext, border in specs:
        folder = out / name
        clean = out / f"{name}_clean.png"
        if not clean.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            hr = cv2.resize(read_image(kodak / source).pixels, size, interpolation=cv2.INTER_CUBIC)
            burst = simulate_burst(
                np.clip(hr, 0, 1),
                frames=frames,
                scale=1,
                noise=0.02,
                shift=shift,
                rotate=0.5,
                seed=7,
            )
            for i, frame in enumerate(burst.frames):
                write_image(folder / f"frame_{i}.{ext}", frame)
            write_image(clean, burst.clean, bit_depth=16)
        w, h = size
        bursts.append(
            ProcessBurst(
                name,
                folder,
                clean,
                border,
                f"{source} upscaled (bicubic) to {w}x{h}, {frames} frames, sigma 0.02, "
                f"{shift:g} px / 0.5 degree motion, {ext.upper()}",
            )
        )
    make_large(kodak, out / "large")
    bursts.append(
        ProcessBurst(
            "mosaic-12mp",
            out / "large",
            out / "large_clean.png",
            40,
            "the large burst of the next section (8 PNG frames of 12 MP)",
        )
    )
    return bursts


# Runs the command from a small process, so that the command's peak memory is its own and not
# the forked benchmark's; writes "seconds peak_kb exit_code" to the file named first.
_LAUNCHER = """
import os, subprocess, sys, time
t0 = time.perf_counter()
child = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
seconds = time.perf_counter() - t0
with open(sys.argv[1], "w") as f:
    f.write(f"{seconds} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def run_process(command: list[str], *, cwd: Path, env: dict | None = None) -> tuple[float, float]:
    """Run ``command`` to its end; its wall time (s) and its own peak memory (MB)."""
    result = cwd / "launcher.txt"
    subprocess.run([sys.executable, "-c", _LAUNCHER, str(result), *command], cwd=cwd, env=env)
    seconds, peak_kb, code = result.read_text().split()
    if int(code) != 0:
        raise RuntimeError(f"{' '.join(command)} failed with exit code {code}")
    return float(seconds), int(peak_kb) / 1024


def bench_process(
    kodak: Path, out: Path, *, repeats: int, checkout: Path | None, only: list[str] | None
) -> dict:
    """Each method as its own process on each burst: best wall time of ``repeats`` runs."""
    work = out / "process"
    work.mkdir(parents=True, exist_ok=True)
    bursts = [b for b in make_process_bursts(kodak, work) if not only or b.name in only]
    methods = {
        "auto-stack script": lambda b, o: [sys.executable, str(SCRIPTS), "auto-stack", str(b), o],
        "classic-ecc script": lambda b, o: [sys.executable, str(SCRIPTS), "classic-ecc", str(b), o],
        "burstsr merge": lambda b, o: [
            sys.executable,
            "-m",
            "burstsr",
            "-q",
            "merge",
            str(b),
            "-o",
            o,
            "--overwrite",
            "--device",
            "cpu",
            "--report",
            o + ".json",
        ],
    }
    envs = {name: None for name in methods}
    if checkout is not None:
        methods["burstsr merge (checkout)"] = methods["burstsr merge"]
        envs["burstsr merge (checkout)"] = {**os.environ, "PYTHONPATH": str(checkout.resolve())}
    rows = {}
    for burst in bursts:
        files = sorted(p for p in burst.folder.iterdir() if p.suffix in (".png", ".jpg"))
        h, w = read_image(files[0]).shape
        mp, frames = h * w / 1e6, len(files)
        clean = read_image(burst.clean).pixels if burst.clean else None
        table = {}
        for name, command in methods.items():
            target = work / f"{burst.name}_{name.split()[0]}_{len(table)}.png"
            runs, best = [], None
            report = Path(str(target) + ".json")
            for _ in range(repeats):
                runs.append(
                    run_process(command(burst.folder, str(target)), cwd=work, env=envs[name])
                )
                if report.is_file() and runs[-1][0] == min(r[0] for r in runs):
                    best = json.loads(report.read_text())  # burstsr: the stages of its best run
                if runs[-1][0] > 30:  # slow methods run once
                    break
            seconds = min(r[0] for r in runs)
            row = {"seconds": seconds, "peak_mb": max(r[1] for r in runs), "psnr": None}
            if clean is not None:
                image = read_image(target).pixels
                crop = (
                    slice(burst.border, h - burst.border),
                    slice(burst.border, w - burst.border),
                )
                row["psnr"] = psnr(image[crop], clean[crop])
            if best is not None:
                row["stages"] = best["seconds"]
                row["per_frame"] = [f["seconds"] for f in best["frames"]]
            table[name] = row
            print(f"  process: {burst.name} {name} {seconds:.2f} s", file=sys.stderr, flush=True)
        rows[burst.name] = {"mp": mp, "frames": frames, "about": burst.about, "methods": table}
    (out / "process.json").write_text(json.dumps(rows, indent=2))
    return {"text": _process_text(rows, repeats), "rows": rows}


def _process_text(rows: dict, repeats: int) -> str:
    lines = [
        f"Whole processes (start-up, decoding, alignment, merge and writing the PNG; best of "
        f"{repeats} runs, one for runs over 30 s; peak memory is the process's own maximum RSS)",
        "",
    ]
    for name, burst in rows.items():
        table = burst["methods"]
        ours = table["burstsr merge"]
        lines += [
            f"{name}: {burst['about']}; {burst['frames']} frames of {burst['mp']:.2f} MP",
            "",
            "| method | seconds | burstsr faster by | peak memory (MB) | PSNR (dB) |",
            "|---|---|---|---|---|",
        ]
        for method, row in table.items():
            value = f"{row['psnr']:.2f}" if row["psnr"] is not None else "n/a"
            lines.append(
                f"| {method} | {row['seconds']:.2f} | {row['seconds'] / ours['seconds']:.2f}x | "
                f"{row['peak_mb']:.0f} | {value} |"
            )
        stages = ours["stages"]
        per_mp = stages["total"] * 1000 / burst["mp"] / burst["frames"]
        startup = ours["seconds"] - stages["total"]
        n = len(ours["per_frame"])
        mean = {
            k: 1000 * sum(f.get(k, 0) for f in ours["per_frame"]) / n
            for k in stages
            if k != "total"
        }
        lines += [
            "",
            f"burstsr merge, profile: {stages['total']:.2f} s in merge_burst "
            f"({per_mp:.0f} ms per MP per frame), {startup:.2f} s for start-up and writing; "
            f"per frame, summed over the threads that overlap: "
            + ", ".join(f"{k} {v:.0f} ms" for k, v in mean.items()),
            "",
        ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Part 3: ghosting, with a moving object


def moving_object_burst(hr: np.ndarray, patch: np.ndarray, seed: int, n: int = 8):
    """Kodak image x2 area-downsampled (384x256), handheld shake, sigma 0.02, and a 48 px
    textured patch crossing the frame 24 px per frame. Returns frames, the clean reference
    frame, and the masks of the object's path and of the static area."""
    rng = np.random.default_rng(seed)
    scene = cv2.resize(hr, (hr.shape[1] // 2, hr.shape[0] // 2), interpolation=cv2.INTER_AREA)
    h, w = scene.shape[:2]
    frames, clean = [], None
    path = np.zeros((h, w), bool)
    size, y = patch.shape[0], (h - patch.shape[0]) // 2
    for k in range(n):
        t = np.eye(3) if k == 0 else random_transform(rng, (h, w), shift=2.0, rotate=0.5)
        img = move_image(scene, t)
        x = 20 + 24 * k
        img[y : y + size, x : x + size] = patch
        path[y : y + size, x : x + size] = True
        if k == 0:
            clean = img.copy()
        noisy = np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1)
        frames.append((np.round(noisy * 255) / 255).astype(np.float32))
    static = ~cv2.dilate(path.astype(np.uint8), np.ones((17, 17), np.uint8)).astype(bool)
    static[:12], static[-12:], static[:, :12], static[:, -12:] = False, False, False, False
    return frames, clean, path, static


def bench_ghosting(kodak: Path, images: int, out: Path) -> dict:
    methods = ("mean", "median", "sigma-clip", "robust")
    stats = {m: {"path": [], "static": [], "ms": []} for m in methods}
    alone = {"path": [], "static": []}
    files = sorted(kodak.glob("kodim*.png"))[:images]
    for k, file in enumerate(files):
        hr = read_image(file).pixels
        other = read_image(files[(k + 7) % len(files)]).pixels
        patch = cv2.resize(other, (48, 48), interpolation=cv2.INTER_AREA)
        frames, clean, path, static = moving_object_burst(hr, patch, seed=2000 + k)
        alone["path"].append(psnr(frames[0][path], clean[path]))
        alone["static"].append(psnr(frames[0][static], clean[static]))
        with tempfile.TemporaryDirectory() as tmp:
            paths = [write_image(Path(tmp) / f"f{i}.png", f) for i, f in enumerate(frames)]
            mp = clean.shape[0] * clean.shape[1] / 1e6
            for m in methods:
                t0 = time.perf_counter()
                image = merge_burst(paths, config=MergeConfig(merge=m)).image
                stats[m]["ms"].append((time.perf_counter() - t0) * 1000 / mp / len(frames))
                stats[m]["path"].append(psnr(image[path], clean[path]))
                stats[m]["static"].append(psnr(image[static], clean[static]))
        print(f"  ghosting: {file.name} done", file=sys.stderr, flush=True)
    lines = [
        f"Moving object: {len(files)} Kodak images x2 (384x256), 8 frames, sigma 0.02, a "
        "48 px patch crossing 24 px a frame",
        "",
        "| merge | PSNR in the object's path (dB) | PSNR in static areas (dB) "
        "| static gain kept | ms/MP/frame |",
        "|---|---|---|---|---|",
        f"| frame 0 alone | {np.mean(alone['path']):.2f} | {np.mean(alone['static']):.2f} | | |",
    ]
    mean_gain = np.mean(stats["mean"]["static"]) - np.mean(alone["static"])
    for m, v in stats.items():
        gain = np.mean(v["static"]) - np.mean(alone["static"])
        lines.append(
            f"| {m} | {np.mean(v['path']):.2f} | {np.mean(v['static']):.2f} | "
            f"{gain / mean_gain:.0%} | {np.median(v['ms']):.0f} |"
        )
    rows = {m: {k: float(np.mean(x)) for k, x in v.items()} for m, v in stats.items()}
    (out / "ghosting.json").write_text(json.dumps(rows, indent=2))
    return {"text": "\n".join(lines), "rows": rows}


# ---------------------------------------------------------------------------------------------
# Part 4: merging onto a finer grid


def bench_superres(kodak: Path, images: int, out: Path) -> dict:
    """Finer-grid merge against bicubic upscaling of the mean merge, x2 and x4, 4/8/16 frames."""
    files = sorted(kodak.glob("kodim*.png"))[:images]
    rows = {}
    for scale in (2, 4):
        for n in (4, 8, 16):
            res = {"bicubic(mean)": [], "finer grid (mean)": [], "finer grid (robust)": []}
            ms = {k: [] for k in res}
            for k, file in enumerate(files):
                burst = simulate_burst(
                    read_image(file).pixels,
                    frames=n,
                    scale=scale,
                    noise=0.02,
                    shift=2.0,
                    rotate=1.0,
                    seed=3000 + k,
                )
                border = 4 * scale
                crop = (slice(border, -border), slice(border, -border))
                with tempfile.TemporaryDirectory() as tmp:
                    paths = [
                        write_image(Path(tmp) / f"f{i:02d}.png", f)
                        for i, f in enumerate(burst.frames)
                    ]
                    mp = burst.clean.shape[0] * burst.clean.shape[1] / 1e6
                    for name, config in (
                        ("bicubic(mean)", MergeConfig(merge="mean")),
                        ("finer grid (mean)", MergeConfig(scale=scale, merge="mean")),
                        ("finer grid (robust)", MergeConfig(scale=scale, merge="robust")),
                    ):
                        t0 = time.perf_counter()
                        image = merge_burst(paths, config=config).image
                        if config.scale == 1:
                            t = torch.from_numpy(image).permute(2, 0, 1)[None]
                            image = (
                                torch.nn.functional.interpolate(
                                    t, scale_factor=scale, mode="bicubic", align_corners=False
                                )[0]
                                .clamp(0, 1)
                                .permute(1, 2, 0)
                                .numpy()
                            )
                        ms[name].append((time.perf_counter() - t0) * 1000 / mp / n)
                        res[name].append(psnr(image[crop], burst.hr[crop]))
            rows[f"x{scale}, {n} frames"] = {
                k: {"psnr": float(np.mean(v)), "ms": float(np.median(ms[k]))}
                for k, v in res.items()
            }
            print(f"  superres: x{scale} {n} frames done", file=sys.stderr, flush=True)
    names = list(next(iter(rows.values())))
    lines = [
        f"Finer-grid merge: {len(files)} Kodak images, x2 and x4 area downsampling, sigma "
        "0.02; PSNR (RGB, border 4 x scale) against the HR image; ms/MP/frame of the "
        "frames' megapixels",
        "",
        "| burst | "
        + " | ".join(f"{n} (dB)" for n in names)
        + " | gain | "
        + " | ".join(f"{n} ms/MP/frame" for n in names)
        + " |",
        "|---" * (2 * len(names) + 2) + "|",
    ]
    for label, r in rows.items():
        gain = r["finer grid (robust)"]["psnr"] - r["bicubic(mean)"]["psnr"]
        lines.append(
            f"| {label} | "
            + " | ".join(f"{r[n]['psnr']:.2f}" for n in names)
            + f" | {gain:+.2f} | "
            + " | ".join(f"{r[n]['ms']:.0f}" for n in names)
            + " |"
        )
    (out / "superres.json").write_text(json.dumps(rows, indent=2))
    return {"text": "\n".join(lines), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kodak", type=Path, default=KODAK)
    parser.add_argument("--images", type=int, default=24, help="Kodak images to use")
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.02, 0.05])
    parser.add_argument("--skip-kodak", action="store_true")
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--skip-ghosting", action="store_true")
    parser.add_argument("--skip-superres", action="store_true")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), help="Kodak part")
    parser.add_argument("--large-methods", nargs="+", default=list(METHODS))
    parser.add_argument("--skip-process", action="store_true")
    parser.add_argument(
        "--process-bursts", nargs="+", help="only these bursts of the whole-process part"
    )
    parser.add_argument("--repeats", type=int, default=2, help="runs per whole process")
    parser.add_argument(
        "--checkout",
        type=Path,
        help="another burstsr source tree to run beside this one in the whole-process part",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench-out")
    parser.add_argument("--large-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    if args.large_child:
        large_child(
            args.large_child, args.out / "large", args.out / f"large_{args.large_child}.json"
        )
        return
    if not args.kodak.is_dir():
        sys.exit(f"{args.kodak}: Kodak images not found; pass --kodak DIR")
    methods = [m for m in args.methods if m in METHODS]
    large_methods = list(args.large_methods)
    if shutil.which("align_image_stack") is None and "hugin" in methods + large_methods:
        print(
            "align_image_stack not found (apt-get install hugin-tools): hugin left out",
            file=sys.stderr,
        )
        methods = [m for m in methods if m != "hugin"]
        large_methods = [m for m in large_methods if m != "hugin"]
    args.out.mkdir(parents=True, exist_ok=True)
    print(
        f"# bench_merge ({os.cpu_count()} CPU cores, torch {torch.__version__}, "
        f"OpenCV {cv2.__version__})\n"
    )
    if not args.skip_process:
        text = bench_process(
            args.kodak,
            args.out,
            repeats=args.repeats,
            checkout=args.checkout,
            only=args.process_bursts,
        )["text"]
        print(text, flush=True)
    if not args.skip_kodak:
        text = bench_kodak(args.kodak, args.images, args.sigmas, args.out, methods)["text"]
        print(text, flush=True)
    if not args.skip_ghosting:
        print(bench_ghosting(args.kodak, args.images, args.out)["text"] + "\n", flush=True)
    if not args.skip_superres:
        print(bench_superres(args.kodak, min(args.images, 8), args.out)["text"] + "\n", flush=True)
    if not args.skip_large:
        print(bench_large(args.kodak, args.out, large_methods)["text"], flush=True)


if __name__ == "__main__":
    main()
