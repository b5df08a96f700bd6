"""``burstsr merge``: frames -> one image; and the merge options ``run`` shares."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import click

from burstsr.burst.align import ALIGN_METHODS, MOTIONS
from burstsr.burst.config import INTERPOLATIONS, KERNELS, MERGE_METHODS, MergeConfig
from burstsr.burst.pipeline import merge_burst
from burstsr.cli import command, progress_bar
from burstsr.cli.options import (
    bit_depth_option,
    crop_option,
    device_option,
    max_output_option,
    overwrite_option,
)
from burstsr.device import device_name
from burstsr.estimate import (
    bayer_estimate,
    check_output_size,
    merge_estimate,
    warn_if_short_of_memory,
)
from burstsr.io import check_output, load_burst, write_json
from burstsr.io.confidence import write_confidence
from burstsr.io.crop import Crop
from burstsr.io.names import merge_name
from burstsr.io.raw import RAW_EXTENSIONS

log = logging.getLogger("burstsr")

_defaults = MergeConfig()


def merge_options(command, *, run: bool = False):
    """The alignment and merge options, declared once for ``merge`` and ``run`` (``run``: the
    grid and kernel default to what the model reads)."""
    options = [
        click.option(
            "--align",
            "align",
            type=click.Choice(ALIGN_METHODS),
            default=_defaults.align,
            show_default=True,
            help="ORB+RANSAC estimate refined by ECC (auto), or one alone.",
        ),
        click.option(
            "--motion",
            type=click.Choice(list(MOTIONS)),
            default=_defaults.motion,
            show_default=True,
            help="Motion model between frames.",
        ),
        click.option(
            "--reference",
            default=_defaults.reference,
            show_default=True,
            help="Reference frame: first, sharpest, or a 0-based index in sort order.",
        ),
        click.option(
            "--merge",
            "merge",
            type=click.Choice(MERGE_METHODS),
            default=_defaults.merge,
            show_default=True,
            help="How aligned frames are combined.",
        ),
        click.option(
            "--scale",
            type=click.Choice(["1", "2", "3", "4"]),
            default=None if run else str(_defaults.scale),
            show_default=not run,
            help="Merge onto a finer grid (multi-frame super-resolution): the output is this "
            "many times larger."
            + (" [default: the grid the model reads: 4 for burst, 1 for fidelity]" if run else ""),
        ),
        click.option(
            "--kernel",
            type=click.Choice(KERNELS),
            default=None if run else _defaults.kernel,
            show_default=not run,
            help="With --scale > 1: kernels that follow the local structure (adaptive: smooth "
            "where the burst sampled unevenly, sharp across edges) or a fixed narrow Gaussian."
            + (" [default: the kernel the model was trained on]" if run else ""),
        ),
        click.option(
            "--interpolation",
            type=click.Choice(INTERPOLATIONS),
            default=_defaults.interpolation,
            show_default=True,
            help="Warp resampling.",
        ),
        click.option(
            "--min-score",
            type=click.FloatRange(-1, 1),
            default=_defaults.min_score,
            show_default=True,
            help="Frames whose aligned correlation is lower are left out.",
        ),
        click.option(
            "--skip-bad", is_flag=True, help="Leave out unreadable files instead of stopping."
        ),
        click.option(
            "--raw-path",
            type=click.Choice(["auto", "demosaic", "bayer"]),
            default="auto",
            show_default=True,
            help="RAW bursts: demosaic every frame, then merge; or merge the sensor's own "
            "colour samples (Bayer domain: sharper and cleaner on simulated bursts, about 5x "
            "slower, colour slightly smoothed against false colour; docs/benchmarks.md). "
            "auto: bayer for a burst of RAW frames, unless --crop or --save-aligned is given "
            "(bayer does not take them).",
        ),
        crop_option("every frame"),
        max_output_option,
        device_option,
        bit_depth_option("16 for 16-bit or RAW input, else 8"),
        overwrite_option(),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def merge_config(options: dict) -> MergeConfig:
    """A MergeConfig from the parsed ``merge_options`` (which it removes from ``options``);
    options left unset (``run``'s grid and kernel) keep MergeConfig's defaults."""
    scale, kernel = options.pop("scale"), options.pop("kernel")
    names = ("align", "motion", "reference", "merge", "interpolation", "min_score", "skip_bad")
    return MergeConfig(
        scale=int(scale) if scale is not None else _defaults.scale,
        kernel=kernel if kernel is not None else _defaults.kernel,
        **{k: options.pop(k) for k in names},
    )


@command()
@click.argument("source_folder", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Merged image (.png or .tif for 16 bit; .jpg, .webp, .bmp) [default: result.png; "
    "result_gridS.png with --scale S > 1].",
)
@merge_options
@click.option(
    "--report",
    type=click.Path(path_type=Path),
    default=None,
    help="Write a JSON report (per-frame transform, score, timings).",
)
@click.option(
    "--save-aligned",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write every aligned frame into this folder.",
)
@click.option(
    "--save-confidence",
    type=click.Path(path_type=Path),
    default=None,
    help="With --scale > 1 (adaptive kernel): write the confidence map, about how many frames "
    "reached each pixel (16-bit PNG, 65535 = 16 or more), for enhance --confidence.",
)
@click.pass_context
def merge(
    ctx: click.Context,
    source_folder: Path,
    output: Path | None,
    device: str,
    bit_depth: str | None,
    overwrite: bool,
    report: Path | None,
    save_aligned: Path | None,
    save_confidence: Path | None,
    crop: Crop | None,
    max_output_mp: float,
    raw_path: str,
    **options,
) -> None:
    """Align every frame in SOURCE_FOLDER to a reference and merge them into one image."""
    config = merge_config(options)
    depth = int(bit_depth) if bit_depth else None
    output = output or merge_name(config.scale)
    burst = load_burst(source_folder, crop=crop)
    check_output(output, inputs=burst.paths, overwrite=overwrite, bit_depth=depth)
    if save_confidence is not None:
        if config.scale == 1 or config.kernel != "adaptive":
            raise click.BadParameter(
                "a confidence map comes with --scale 2, 3 or 4 and --kernel adaptive",
                param_hint="--save-confidence",
            )
        check_output(save_confidence, inputs=burst.paths, overwrite=overwrite, bit_depth=16)
    if report is not None:
        check_output(report, inputs=burst.paths, overwrite=overwrite, image=False)
    raw_path = pick_raw_path(raw_path, burst.paths, crop=crop, save_aligned=save_aligned)
    if raw_path == "bayer":
        check_bayer_options(burst.paths, crop=crop, save_aligned=save_aligned)
    dev = device_name(device)  # the CPU merge does not need torch
    log.debug("device: %s", dev)
    estimate = merge_estimate(
        burst.frame_size(), len(burst), config.scale, dev, with_torch=config.scale > 1
    )
    if raw_path == "bayer":
        estimate = bayer_estimate(estimate, burst.frame_size(), len(burst), config.scale)
    if config.scale > 1:  # the finer grids cost memory and time with the output's size
        check_output_size(
            estimate, max_output_mp, "merge onto a coarser grid (--scale) or a region (--crop)"
        )
        log.info("merging onto the x%d grid: %s", config.scale, estimate.describe())
    warn_if_short_of_memory(estimate, log)
    started = time.perf_counter()
    with progress_bar("Merging", len(burst), not ctx.obj["quiet"]) as progress:
        if raw_path == "bayer":
            from burstsr.burst.bayer import merge_bayer

            result = merge_bayer(burst.paths, scale=config.scale, config=config, progress=progress)
        else:
            result = merge_burst(
                burst, config=config, device=dev, progress=progress, save_aligned=save_aligned
            )
    result.write(output, bit_depth=depth)
    if save_confidence is not None:
        write_confidence(save_confidence, result.confidence)
    if report is not None:
        write_json(report, result.report())
    log.info(
        "merged %d of %d frames into %s in %.1f s",
        result.used,
        len(result.frames),
        output,
        time.perf_counter() - started,
    )


def pick_raw_path(
    raw_path: str, paths: list[Path], *, crop: Crop | None, save_aligned: Path | None
) -> str:
    """``--raw-path``: as given, or for ``auto`` the Bayer-domain merge when every frame is RAW
    and neither ``--crop`` nor ``--save-aligned`` is asked for (the demosaic path otherwise)."""
    if raw_path != "auto":
        return raw_path
    if not all(p.suffix.lower() in RAW_EXTENSIONS for p in paths):
        return "demosaic"
    if crop is not None or save_aligned is not None:
        given = "--crop" if crop is not None else "--save-aligned"
        log.info(
            "RAW burst: demosaicing every frame (the Bayer-domain merge does not take %s)", given
        )
        return "demosaic"
    log.info("RAW burst: merging in the Bayer domain (--raw-path demosaic for the faster path)")
    return "bayer"


def check_bayer_options(paths: list[Path], *, crop: Crop | None, save_aligned: Path | None) -> None:
    """``--raw-path bayer`` reads RAW frames whole: refuse other files and the options it
    does not support, before any work."""
    others = [p for p in paths if p.suffix.lower() not in RAW_EXTENSIONS]
    if others:
        raise click.BadParameter(
            f"bayer needs RAW frames; {others[0].name} is not one", param_hint="--raw-path"
        )
    for value, name in ((crop, "--crop"), (save_aligned, "--save-aligned")):
        if value is not None:
            raise click.BadParameter(f"not with --raw-path bayer; drop {name}", param_hint=name)
