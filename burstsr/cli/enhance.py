"""``burstsr enhance``: an image (or a folder of them) -> restored, upscaled image(s)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import click

from burstsr.cli import command, progress_bar
from burstsr.cli.options import (
    bit_depth_option,
    check_sample,
    crop_option,
    device_option,
    ensemble_option,
    half_option,
    max_output_option,
    model_option,
    outscale_options,
    overwrite_option,
    route_options,
    strength_option,
    tile_option,
)
from burstsr.cli.routing import load_routing, report_routing
from burstsr.device import check_half, resolve_device
from burstsr.errors import InputError, OutputError
from burstsr.estimate import (
    Estimate,
    check_output_size,
    enhance_estimate,
    outscaled,
    seconds_per_input_pixel,
    warn_if_short_of_memory,
)
from burstsr.io import (
    check_folder,
    check_format,
    check_output,
    image_grid,
    image_size,
    list_frames,
    make_folder,
)
from burstsr.io.confidence import read_confidence
from burstsr.io.crop import Crop
from burstsr.io.names import enhanced_name
from burstsr.refiner.outscale import output_size, scale_name

if TYPE_CHECKING:
    from burstsr.refiner.networks import Generator

log = logging.getLogger("burstsr")


@command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Output file (a folder, for a folder in) [default: NAME_xS.png here, S the scale "
    "from the frames (result_grid4.png -> result_x4.png); enhanced/ for a folder].",
)
@model_option()
@tile_option
@click.option(
    "--tile-pad",
    type=click.IntRange(0),
    default=None,
    help=(
        "Context around each tile [default: what the model was measured to need, within a "
        "16-bit level of the whole image's output]."
    ),
)
@device_option
@half_option
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
@outscale_options
@route_options
@crop_option("the image (of every image, for a folder)")
@max_output_option
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
    outscale: float | None,
    width: int | None,
    sample: int | None,
    route: bool,
    route_threshold: float,
    coarse_model: str | None,
    save_route: Path | None,
    crop: Crop | None,
    max_output_mp: float,
    overwrite: bool,
) -> None:
    """Restore and upscale SOURCE (an image, or a folder of images) with the refiner."""
    from burstsr.refiner.checkpoint import load_generator
    from burstsr.refiner.enhance import enhance_file

    confidence = read_confidence(confidence_path) if confidence_path is not None else None
    dev = resolve_device(device)
    if half:
        check_half(dev)
    generator = load_generator(model, device=dev, strength=strength)
    check_sample(sample, model, generator)
    routing = load_routing(model, generator, route, route_threshold, coarse_model)
    if save_route is not None and (routing is None or source.is_dir()):
        raise click.BadParameter(
            "a routing map is written for one image, routed (not --no-route, and a coarse "
            "network beside the model)",
            param_hint="--save-route",
        )
    scale, grid = generator.config.scale, generator.config.unshuffle
    named = scale_name(outscale, width, grid * scale)
    if source.is_dir():
        inputs = list_frames(source)
        folder = check_folder(output or Path("enhanced"))
        jobs = [(p, folder / enhanced_name(p, named)) for p in inputs]
    elif source.is_file():
        jobs = [(source, output or Path(enhanced_name(source, named)))]
    else:
        raise InputError(f"{source}: no such file or folder")
    made_on = {src: image_grid(src) for src, _ in jobs}  # each file's grid note, if any
    for src, _ in jobs:
        check_grid(src, made_on[src], model, grid, scale)
    if grid > 1 and None in made_on.values():
        log.info(
            "model %s restores merges made on a x%d grid (burstsr merge --scale %d) at their "
            "size%s; for a merge on the frames' grid use a model that upscales (--model fidelity)",
            model,
            grid,
            grid,
            f" and upscales them x{scale}" if scale > 1 else "",
        )
    names = [dst.resolve() for _, dst in jobs]
    for src, dst in jobs:
        if names.count(dst.resolve()) > 1:
            raise OutputError(f"{src}: its output {dst} would be written twice; rename the input")
    depth = int(bit_depth) if bit_depth else None
    for _, dst in jobs:  # a folder still to be made holds nothing to collide with
        if dst.parent.is_dir():
            check_output(dst, inputs=[p for p, _ in jobs], overwrite=overwrite, bit_depth=depth)
        else:
            check_format(dst, depth)
    if save_route is not None:
        check_output(save_route, inputs=[p for p, _ in jobs], overwrite=overwrite)
    inputs = {src: input_size(src, crop) for src, _ in jobs}
    sizes = {  # each output's size, from its frames' size (the input's, over the grid)
        src: output_size((h // grid, w // grid), outscale=outscale, width=width)
        for src, (h, w) in inputs.items()
    }
    streamed = [dst.suffix.lower() == ".png" and sizes[src] is None for src, dst in jobs]
    own = job_estimates(generator, list(inputs.values()), tile, tile_pad, ensemble, half, streamed)
    estimates = [
        outscaled(estimate, sizes[src], generator.config.any_scale)
        for src, estimate in zip(inputs, own, strict=True)
    ]
    for (src, _), estimate in zip(jobs, estimates, strict=True):
        check_output_size(estimate, max_output_mp, f"{src}: enhance a region of it (--crop)")
    if source.is_dir():
        make_folder(folder)  # only now that every check has passed
    if confidence is not None and crop is not None:
        confidence = crop.apply(confidence, confidence_path)
    for (src, dst), estimate in zip(jobs, estimates, strict=True):
        log.info("%s: output %s", src.name, estimate.describe())
        warn_if_short_of_memory(estimate, log)
        with progress_bar(f"Enhancing {src.name}", 100, not ctx.obj["quiet"]) as progress:

            def update(done: int, total: int, bar=progress) -> None:
                if bar is not None:
                    bar(round(100 * done / total), 100, f"tile {done}/{total}")

            height, width = enhance_file(
                generator,
                src,
                dst,
                tile=tile,
                tile_pad=tile_pad,
                half=half,
                ensemble=ensemble,
                bit_depth=depth,
                confidence=confidence,
                crop=crop,
                routing=routing,
                save_route=save_route,
                size=sizes[src],
                seed=sample,
                progress=update,
            )
        report_routing(routing, None, None)
        log.info("%s -> %s (%dx%d)", src, dst, width, height)


def input_size(path: Path, crop: Crop | None) -> tuple[int, int]:
    """``(height, width)`` of what enhance reads from ``path``: the image, or its ``crop``
    (checked to fit), from the header."""
    h, w = image_size(path)
    if crop is None:
        return h, w
    crop.check(h, w, path)
    return crop.height, crop.width


def job_estimates(
    generator: Generator,
    sizes: list[tuple[int, int]],
    tile: int | None,
    tile_pad: int | None,
    ensemble: bool,
    half: bool = False,
    streamed: list[bool] | None = None,
) -> list[Estimate]:
    """Output size, time and memory of enhancing inputs of ``sizes`` ``(height, width)``
    (``streamed``: which outputs are written as their rows are made); the model is timed on a
    patch once, when some output is over 2 MP."""
    s = generator.config.scale
    big = any(h * w * s * s > 2e6 for h, w in sizes)
    rate = seconds_per_input_pixel(generator, half=half) if big else None
    kwargs = dict(tile=tile, tile_pad=tile_pad, ensemble=ensemble, rate=rate)
    return [
        enhance_estimate(generator, hw, streamed=stream, **kwargs)
        for hw, stream in zip(sizes, streamed or [False] * len(sizes), strict=True)
    ]


def check_grid(path: Path, made_on: int | None, model: str, reads: int, scale: int) -> None:
    """Refuse, before any work, a merge whose grid note (``made_on``:
    :func:`burstsr.io.image_grid`) says it was made on another grid than the one ``model``
    reads (``reads``: 1 for the frames')."""
    if made_on is None or made_on == reads:
        return
    if reads == 1:
        hint = " (--model burst)" if made_on == 4 else ""
        raise InputError(
            f"{path}: a merge on the x{made_on} grid, already {made_on}x its frames; model "
            f"{model} would upscale it x{scale} again. Restore it at its size with a model "
            f"that reads x{made_on}-grid merges{hint}, or enhance a merge on the frames' grid "
            f"(burstsr merge without --scale)"
        )
    instead = (
        "for this one use a model that upscales (--model fidelity)"
        if made_on == 1
        else f"merge the burst again with --scale {reads}"
    )
    raise InputError(
        f"{path}: a merge on the {'frames' if made_on == 1 else f'x{made_on}'} grid; model "
        f"{model} reads merges on the x{reads} grid (burstsr merge --scale {reads}, or "
        f"burstsr run); {instead}"
    )
