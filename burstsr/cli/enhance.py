"""``burstsr enhance``: an image (or a folder of them) -> restored, upscaled image(s)."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from burstsr.cli import command, progress_bar
from burstsr.cli.options import (
    bit_depth_option,
    device_option,
    ensemble_option,
    model_option,
    overwrite_option,
    strength_option,
    tile_option,
)
from burstsr.device import resolve_device
from burstsr.errors import InputError
from burstsr.io import check_folder, check_format, check_output, list_frames, make_folder
from burstsr.io.confidence import read_confidence

log = logging.getLogger("burstsr")


@command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Output file (a folder, for a folder in) [default: NAME_xS.png here; "
    "enhanced/ for a folder].",
)
@model_option()
@tile_option
@click.option(
    "--tile-pad",
    type=click.IntRange(0),
    default=None,
    help="Context around each tile [default: the network's receptive radius].",
)
@device_option
@click.option("--half", is_flag=True, help="fp16 inference (CUDA only).")
@ensemble_option
@strength_option
@bit_depth_option("as the input")
@click.option(
    "--confidence",
    "confidence_path",
    type=click.Path(path_type=Path),
    default=None,
    help="For a model that reads it: the merge's confidence map (merge --save-confidence) "
    "[default: that of an evenly sampled 8-frame burst].",
)
@overwrite_option()
@click.pass_context
def enhance(
    ctx: click.Context,
    source: Path,
    output: Path | None,
    model: str,
    tile: int,
    tile_pad: int | None,
    device: str,
    half: bool,
    ensemble: bool,
    strength: float | None,
    bit_depth: str | None,
    confidence_path: Path | None,
    overwrite: bool,
) -> None:
    """Restore and upscale SOURCE (an image, or a folder of images) with the refiner."""
    from burstsr.refiner.checkpoint import load_generator
    from burstsr.refiner.enhance import enhance_file

    confidence = read_confidence(confidence_path) if confidence_path is not None else None
    generator = load_generator(model, device=resolve_device(device), strength=strength)
    scale, grid = generator.config.scale, generator.config.unshuffle
    if grid > 1:  # a file does not say which grid it was merged on: say what the model expects
        log.info(
            "model %s restores merges made on a x%d grid (burstsr merge --scale %d) at their "
            "size%s; for a merge on the frames' grid use a model that upscales (--model fidelity)",
            model,
            grid,
            grid,
            f" and upscales them x{scale}" if scale > 1 else "",
        )
    if source.is_dir():
        inputs = list_frames(source)
        folder = check_folder(output or Path("enhanced"))
        jobs = [(p, folder / f"{p.stem}_x{scale}.png") for p in inputs]
    elif source.is_file():
        jobs = [(source, output or Path(f"{source.stem}_x{scale}.png"))]
    else:
        raise InputError(f"{source}: no such file or folder")
    depth = int(bit_depth) if bit_depth else None
    for _, dst in jobs:  # a folder still to be made holds nothing to collide with
        if dst.parent.is_dir():
            check_output(dst, inputs=[p for p, _ in jobs], overwrite=overwrite, bit_depth=depth)
        else:
            check_format(dst, depth)
    if source.is_dir():
        make_folder(folder)  # only now that every check has passed
    for src, dst in jobs:
        with progress_bar(f"Enhancing {src.name}", 100, not ctx.obj["quiet"]) as progress:

            def update(done: int, total: int, bar=progress) -> None:
                if bar is not None:
                    bar(round(100 * done / total), 100, f"tile {done}/{total}")

            result = enhance_file(
                generator,
                src,
                dst,
                tile=tile,
                tile_pad=tile_pad,
                half=half,
                ensemble=ensemble,
                bit_depth=depth,
                confidence=confidence,
                progress=update,
            )
        log.info("%s -> %s (x%d, %dx%d)", src, dst, scale, result.shape[1], result.shape[0])
