"""``burstsr synth``: high-resolution images -> simulated bursts -> merges -> training pairs."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import click

from burstsr.burst.config import KERNELS, MergeConfig
from burstsr.burst.pairs import DEGRADATIONS, SynthConfig, write_pairs
from burstsr.cli import command, progress_bar
from burstsr.cli.options import overwrite_option
from burstsr.errors import OutputError
from burstsr.io import check_folder, list_frames

log = logging.getLogger("burstsr")

_synth = SynthConfig()


def _frame_range(text: str | None, degradation: str) -> tuple[int, int]:
    """``--frames`` as (fewest, most): N or A-B, 2 to 64; the default depends on the
    degradation."""
    if text is None:
        if degradation != "simple":
            return _synth.camera.frames
        frames = _synth.frames
        return (frames, frames) if isinstance(frames, int) else frames
    low, _, high = text.partition("-")
    try:
        low, high = int(low), int(high or low)
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected N or A-B", param_hint="--frames") from None
    if not 2 <= low <= high <= 64:
        raise click.BadParameter(f"{text!r}: frames go from 2 to 64, A <= B", param_hint="--frames")
    return low, high


@command()
@click.argument("hr_dir", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    required=True,
    help="Pairs folder to write (<scene>/{frames/, result.png, HR.png, meta.json}).",
)
@click.option(
    "--degradation",
    type=click.Choice(DEGRADATIONS),
    default=_synth.degradation,
    show_default=True,
    help="simple: area downsampling + Gaussian noise; camera: lens blur, Bayer mosaic, shot and "
    "read noise, demosaicing, sRGB, JPEG, zoom and almost-still frames, all drawn per scene "
    "(docs/training.md); mixed: each scene one or the other.",
)
@click.option(
    "--frames",
    default=None,
    help="Frames per burst, N or a range A-B drawn per scene "
    "[default: 8 simple, 2-16 camera and mixed].",
)
@click.option(
    "--raw",
    is_flag=True,
    help="Camera bursts: write the frames as DNG (the noisy sensor mosaic) instead of JPEG-"
    "like PNGs, so the merge goes through the RAW path.",
)
@click.option(
    "--raw-path",
    type=click.Choice(["demosaic", "bayer"]),
    default="demosaic",
    show_default=True,
    help="With --raw: merge the DNG frames demosaiced (as merge does by default) or in the "
    "Bayer domain (merge --raw-path bayer), for a model of such merges.",
)
@click.option(
    "--kernel",
    type=click.Choice(KERNELS),
    default=_synth.merge.kernel,
    show_default=True,
    help="The finer-grid merge's kernels (with --merge-scale > 1); a model trained on the "
    "pairs merges with the same.",
)
@click.option(
    "--scale",
    type=click.Choice(["1", "2", "3", "4", "8"]),
    default=str(_synth.scale),
    show_default=True,
    help="Area downsampling from HR to the frames.",
)
@click.option(
    "--noise",
    type=click.FloatRange(0, 1),
    default=_synth.noise,
    show_default=True,
    help="Read noise standard deviation.",
)
@click.option(
    "--shot-noise",
    type=click.FloatRange(0, 1),
    default=_synth.shot_noise,
    show_default=True,
    help="Shot noise: variance grows by this times the signal.",
)
@click.option(
    "--shift",
    type=click.FloatRange(0),
    default=_synth.shift,
    show_default=True,
    help="Largest handheld shift, in frame pixels.",
)
@click.option(
    "--rotate",
    type=click.FloatRange(0),
    default=_synth.rotate,
    show_default=True,
    help="Largest handheld rotation, in degrees.",
)
@click.option(
    "--merge-scale",
    type=click.Choice(["1", "2", "4"]),
    default=str(_synth.merge.scale),
    show_default=True,
    help="Merge onto a finer grid: the pairs keep scale / merge-scale to learn.",
)
@click.option("--seed", type=int, default=_synth.seed, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(0),
    default=1,
    show_default=True,
    help="Scenes in this many processes at once (0: one per CPU core); the pairs are the same.",
)
@overwrite_option("Write into a pairs folder that has scenes.")
@click.pass_context
def synth(
    ctx: click.Context,
    hr_dir: Path,
    out: Path,
    degradation: str,
    frames: str | None,
    raw: bool,
    raw_path: str,
    kernel: str,
    scale: str,
    noise: float,
    shot_noise: float,
    shift: float,
    rotate: float,
    merge_scale: str,
    seed: int,
    workers: int,
    overwrite: bool,
) -> None:
    """Simulate handheld bursts of the images in HR_DIR, merge them, and write training pairs."""
    low, high = _frame_range(frames, degradation)
    sources = list_frames(hr_dir)
    check_folder(out, what="pairs folder")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise OutputError(f"{out}: not empty; pass --overwrite to add or replace scenes")
    with progress_bar("Synthesising", len(sources), not ctx.obj["quiet"]) as progress:
        config = SynthConfig(
            degradation=degradation,
            frames=(low, high),
            scale=int(scale),
            noise=noise,
            shot_noise=shot_noise,
            shift=shift,
            rotate=rotate,
            seed=seed,
            camera=dataclasses.replace(_synth.camera, frames=(low, high)),
            raw=raw,
            raw_path=raw_path,
            merge=MergeConfig(scale=int(merge_scale), kernel=kernel),
        )
        workers = workers or os.cpu_count() or 1
        written = write_pairs(hr_dir, out, config, progress=progress, workers=workers)
    log.info("wrote %d pairs to %s", len(written), out)
