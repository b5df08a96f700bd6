"""Training pairs: high-resolution images -> simulated bursts -> their merges, on disk.

``write_pairs`` (behind ``burstsr synth``) simulates a burst of each image
(:mod:`burstsr.burst.synth`), merges it with the code behind ``burstsr merge`` and writes the
merge beside the image it should become; the refiner learns from these pairs.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from burstsr.burst.camera import CameraRanges
from burstsr.burst.config import MergeConfig
from burstsr.burst.pipeline import merge_burst
from burstsr.burst.synth import simulate_burst, simulate_camera_burst
from burstsr.errors import AlignmentError, InputError
from burstsr.io import image_size, list_frames, make_folder, read_image, write_image, write_json
from burstsr.io.confidence import write_confidence
from burstsr.io.dng import raw_to_counts, write_dng

log = logging.getLogger(__name__)

DEGRADATIONS = ("simple", "camera", "mixed")


@dataclass(frozen=True)
class SynthConfig:
    """Options of ``burstsr synth`` (:func:`write_pairs`); the CLI takes its defaults from here.

    ``frames``, ``noise``, ``shot_noise``, ``shift`` and ``rotate`` shape the simple bursts
    (:func:`simulate_burst`); camera bursts draw theirs from ``camera``. ``merge``: how the pairs'
    bursts are merged (its ``scale``: onto a finer grid).
    """

    degradation: str = "simple"  # simple | camera | mixed
    frames: int | tuple[int, int] = 8  # frames per burst, or (fewest, most) drawn per scene
    scale: int = 4  # area downsampling from HR to the frames
    noise: float = 0.02
    shot_noise: float = 0.0
    shift: float = 2.0
    rotate: float = 1.0
    seed: int = 0
    camera: CameraRanges = field(default_factory=CameraRanges)
    raw: bool = False
    raw_path: str = "demosaic"  # with raw: how the RAW frames are merged (demosaic | bayer)
    merge: MergeConfig = field(default_factory=MergeConfig)


def write_pairs(
    hr_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: SynthConfig = SynthConfig(),
    *,
    progress: Callable[[int, int, str], None] | None = None,
    workers: int = 1,
) -> list[Path]:
    """Training pairs from high-resolution images: simulate, merge, write.

    For each image in ``hr_dir`` (natural order) writes ``out_dir/<scene>/`` with ``frames/``
    (the simulated burst), ``result.png`` (its merge by :func:`merge_burst`, the code behind
    ``burstsr merge``, 16 bit), with the adaptive fine-grid kernel also ``confidence.png`` (its
    confidence map as the generator reads it, 16 bit), ``HR.png`` (the image cropped to a
    multiple of ``scale``) and ``meta.json`` (every parameter, drawn or given; true and
    estimated transforms). Each scene is written to a temporary folder and renamed into place.
    The burst of a scene depends only on ``seed`` and the scene's name, so ``workers`` > 1
    (scenes in that many processes) writes the same pairs as one.

    ``config.degradation``: ``simple`` (:func:`simulate_burst`), ``camera``
    (:func:`simulate_camera_burst`, drawn from ``config.camera``, whose ``frames`` then counts),
    or ``mixed`` (each scene one or the other, even odds). ``config.raw``: camera bursts only:
    write the frames as DNG files of the noisy sensor mosaic (merged through the RAW path)
    instead of the camera's JPEGs.

    A scene whose burst cannot be merged (no frame besides the reference aligns, as can happen
    to a short, noisy camera burst of a flat image) is skipped with a warning.

    Returns:
        The scene folders written.
    """
    degradation, scale, raw, merge_config = (
        config.degradation,
        config.scale,
        config.raw,
        config.merge,
    )
    if scale % merge_config.scale:
        raise InputError(f"--merge-scale {merge_config.scale} must divide --scale {scale}")
    if degradation not in DEGRADATIONS:
        raise InputError(f"--degradation {degradation}: expected one of {', '.join(DEGRADATIONS)}")
    if raw and degradation != "camera":
        raise InputError("--raw needs --degradation camera (RAW frames come from its sensor)")
    if config.raw_path not in ("demosaic", "bayer"):
        raise InputError(f"--raw-path {config.raw_path}: expected demosaic or bayer")
    if config.raw_path == "bayer" and not raw:
        raise InputError("--raw-path bayer needs --raw (it merges RAW frames)")
    sources = list_frames(hr_dir)
    for source in sources:  # headers only: refuse a small image before any work
        h, w = image_size(source)
        if min(h, w) < 32 * scale:
            raise InputError(
                f"{source}: {w}x{h} is too small for x{scale} bursts "
                f"(at least {32 * scale} px a side)"
            )
    out_dir = Path(out_dir)
    make_folder(out_dir, what="pairs folder")
    written: dict[Path, Path] = {}

    def done(count: int, source: Path, outcome: Path | str) -> None:
        if isinstance(outcome, Path):
            written[source] = outcome
        else:
            log.warning("%s: skipped, its burst could not be merged: %s", source.name, outcome)
        if progress is not None:
            progress(count, len(sources), source.name)

    if workers <= 1 or len(sources) <= 1:
        for count, source in enumerate(sources, start=1):
            done(count, source, _write_scene(source, out_dir, config))
        return list(written.values())
    spawn = multiprocessing.get_context("spawn")  # no forked copies of threads or torch state
    with ProcessPoolExecutor(min(workers, len(sources)), spawn, _one_thread) as pool:
        futures = {pool.submit(_write_scene, source, out_dir, config): source for source in sources}
        for count, future in enumerate(as_completed(futures), start=1):
            done(count, futures[future], future.result())
    return [written[source] for source in sources if source in written]  # in source order


def _one_thread() -> None:
    """A worker process of :func:`write_pairs`: one thread each (the processes fill the cores)."""
    cv2.setNumThreads(1)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def _write_scene(source: Path, out_dir: Path, config: SynthConfig) -> Path | str:
    """Simulate, merge and write one scene of :func:`write_pairs`: its folder, or why it was
    skipped (its burst could not be merged)."""
    degradation, frames, scale, seed = config.degradation, config.frames, config.scale, config.seed
    noise, shot_noise, shift, rotate = config.noise, config.shot_noise, config.shift, config.rotate
    camera, raw, merge_config = config.camera, config.raw, config.merge
    hr = read_image(source).pixels
    scene_seed = (zlib.crc32(source.stem.encode()) + seed * 1_000_003) % 2**32
    kind = degradation
    if kind == "mixed":
        kind = "camera" if np.random.default_rng(scene_seed + 1).random() < 0.5 else "simple"
    if kind == "camera":
        burst = simulate_camera_burst(hr, scale=scale, ranges=camera, seed=scene_seed)
        params = {"camera": burst.camera.to_dict(), "camera_ranges": asdict(camera)}
    else:
        count = frames
        if isinstance(frames, tuple):
            count = int(np.random.default_rng(scene_seed + 2).integers(frames[0], frames[1] + 1))
        burst = simulate_burst(
            hr,
            frames=count,
            scale=scale,
            noise=noise,
            shot_noise=shot_noise,
            shift=shift,
            rotate=rotate,
            seed=scene_seed,
        )
        params = {"noise": noise, "shot_noise": shot_noise, "shift": shift, "rotate": rotate}
    final = out_dir / source.stem
    tmp = Path(tempfile.mkdtemp(dir=out_dir, prefix=f".{source.stem}."))
    try:
        (tmp / "frames").mkdir()
        for i, frame in enumerate(burst.frames):
            if raw:
                write_dng(tmp / "frames" / f"frame_{i:02d}.dng", raw_to_counts(burst.raws[i]))
            else:
                write_image(tmp / "frames" / f"frame_{i:02d}.png", frame)
        try:
            if raw and config.raw_path == "bayer":
                from burstsr.burst.bayer import merge_bayer

                frames_dng = sorted((tmp / "frames").glob("*.dng"))
                result = merge_bayer(frames_dng, scale=merge_config.scale, config=merge_config)
            else:
                result = merge_burst(tmp / "frames", config=merge_config)
        except AlignmentError as exc:  # a short burst none of whose frames aligned
            return str(exc)
        result.write(tmp / "result.png", bit_depth=16)
        if result.confidence is not None:
            write_confidence(tmp / "confidence.png", result.confidence)
        write_image(tmp / "HR.png", burst.hr)
        meta = {
            "source": str(source),
            "scale": scale,
            "degradation": kind,
            "frames": len(burst.frames),
            "raw": raw,
            "raw_path": config.raw_path if raw else None,
            **params,
            "seed": seed,
            "scene_seed": scene_seed,
            "merge": merge_config.merge,
            "merge_scale": merge_config.scale,
            "merge_kernel": merge_config.kernel,
            "true_transforms": [t.tolist() for t in burst.transforms],
            "estimated_transforms": [f.transform for f in result.frames],
            "frames_used": result.used,
        }
        write_json(tmp / "meta.json", meta)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return final
