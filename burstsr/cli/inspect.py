"""``burstsr inspect``: a picture of what the refiner does inside, on a crop of an image or of
a burst (merged as ``run`` merges it, with its confidence map)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import click

from burstsr.burst.camera import linear_to_srgb
from burstsr.burst.config import MergeConfig
from burstsr.burst.pipeline import merge_burst
from burstsr.cli import command
from burstsr.cli.options import crop_option, device_option, overwrite_option
from burstsr.device import resolve_device
from burstsr.errors import InputError
from burstsr.io import check_output, image_grid, image_size, load_burst, read_image, write_image
from burstsr.io.crop import Crop
from burstsr.refiner.registry import DEFAULT_MODEL, DEFAULT_ROUTE_THRESHOLD, DEFAULT_RUN_MODEL

log = logging.getLogger("burstsr")

WORKING_CROP = 64  # default crop: this many of the network's working pixels a side


@command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path("activations.png"),
    show_default=True,
    help="The picture to write.",
)
@click.option(
    "--model",
    default=None,
    help=f"A shipped model, a run folder or a .pt checkpoint [default: {DEFAULT_RUN_MODEL} for "
    f"a burst folder or a x4-grid merge, else {DEFAULT_MODEL}].",
)
@click.option(
    "--layers",
    default=None,
    help="Comma-separated layers to show (head, body.0 ..., body_tail, upsample.N, tail) "
    "[default: all].",
)
@crop_option("the image (of the frames, for a burst) [default: 64 of the network's working "
             "pixels a side, at the centre]")  # fmt: skip
@click.option(
    "--channels",
    type=click.IntRange(1, 256),
    default=16,
    show_default=True,
    help="Feature maps shown per layer (the most active ones).",
)
@device_option
@overwrite_option("Replace the picture if it exists.")
def inspect(
    source: Path,
    output: Path,
    model: str | None,
    layers: str | None,
    crop: Crop | None,
    channels: int,
    device: str,
    overwrite: bool,
) -> None:
    """Picture the refiner's per-layer feature maps on a crop of SOURCE (an image, or a burst
    folder, merged as `burstsr run` merges it), with the crop, the model's output, the detail
    score routing reads and, for a burst, the merge's confidence map."""
    from burstsr.refiner.checkpoint import load_generator
    from burstsr.refiner.inspect import activation_figure, activations, layer_names
    from burstsr.refiner.route import detail_map

    if not source.exists():
        raise InputError(f"{source}: no such file or folder")
    burst = source.is_dir()
    if model is None:
        model = DEFAULT_RUN_MODEL if burst or image_grid(source) == 4 else DEFAULT_MODEL
    check_output(output, inputs=[source], overwrite=overwrite)
    generator = load_generator(model, device=resolve_device(device))
    wanted = [n.strip() for n in layers.split(",") if n.strip()] if layers else None
    for name in wanted or []:  # before any merging
        if name not in layer_names(generator):
            raise click.BadParameter(
                f"{name}: the model has no such layer; it has {', '.join(layer_names(generator))}",
                param_hint="--layers",
            )
    grid = generator.config.unshuffle
    confidence = None
    if burst:
        frames = load_burst(source)
        crop = crop or _centre(frames.frame_size(), WORKING_CROP)  # frames: merged x grid
        config = dataclasses.replace(MergeConfig(), **generator.config.merge_reads())
        merged = merge_burst(load_burst(source, crop=crop), config=config, device=device)
        image, confidence = merged.image, merged.confidence
    else:
        crop = crop or _centre(image_size(source), WORKING_CROP * grid)
        decoded = read_image(source)
        pixels = linear_to_srgb(decoded.pixels) if decoded.linear else decoded.pixels
        image = crop.apply(pixels, source)
    acts, out = activations(generator, image, confidence=confidence, layers=wanted)
    panels = [(f"input {image.shape[1]}x{image.shape[0]}", image), ("output", out)]
    detail = detail_map(image, grid)
    panels.append((f"detail score (route: {DEFAULT_ROUTE_THRESHOLD:g}+)", detail))
    if confidence is not None:
        panels.append((f"merge confidence, 0 to {confidence.max():.1f} frames", confidence))
    picture, _ = activation_figure(acts, panels, channels=channels)
    write_image(output, picture)
    log.info("%s: %d layers of %s on %s (crop %s)", output, len(acts), model, source.name, crop)


def _centre(size: tuple[int, int], side: int) -> Crop:
    """A ``side`` x ``side`` crop at the centre of an image of ``size`` (smaller if it is)."""
    h, w = size
    ch, cw = min(side, h), min(side, w)
    return Crop((w - cw) // 2, (h - ch) // 2, cw, ch)
