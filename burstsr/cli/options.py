"""Options shared by several commands, declared once."""

from __future__ import annotations

from pathlib import Path

import click

from burstsr.device import DEVICES
from burstsr.estimate import DEFAULT_MAX_OUTPUT_MP
from burstsr.io.crop import Crop
from burstsr.refiner.registry import DEFAULT_MODEL, DEFAULT_ROUTE_THRESHOLD, SHIPPED


def model_option(default: str = DEFAULT_MODEL):
    """``--model``: a shipped model's name, a run folder or a checkpoint."""
    return click.option(
        "--model",
        default=default,
        show_default=True,
        help=f"A shipped model ({', '.join(SHIPPED)}), a run folder (its best.pt) or a .pt "
        "checkpoint.",
    )


tile_option = click.option(
    "--tile",
    type=click.IntRange(0),
    default=None,
    help="Enhance tile size in input pixels (0: the whole image at once) "
    "[default: 256, times 4 for a model of merges on a x4 grid].",
)
strength_option = click.option(
    "--strength",
    type=click.FloatRange(0, 1),
    default=None,
    help="For a model trained from another (an adversarial model from its fidelity model): "
    "blend their outputs, 0 = the fidelity model exactly, 1 = this model; in between both "
    "run, twice the time [default: 1].",
)
ensemble_option = click.option(
    "--ensemble",
    is_flag=True,
    help="Average the model over the 8 flips and quarter turns of each tile: 8x the time, "
    "a little more accuracy.",
)
half_option = click.option(
    "--half",
    is_flag=True,
    help="Half-precision inference: fp16 on CUDA; bfloat16 on a CPU that computes in it "
    "natively (AVX512-BF16 or AMX: recent Xeons, AMD Zen 4), about 2x faster there; the same "
    "PSNR on the benchmarks, pixels within a few 8-bit levels of full precision at edges.",
)
device_option = click.option(
    "--device",
    type=click.Choice(DEVICES),
    default="auto",
    show_default=True,
    help="Where the numerics run (auto: CUDA when available).",
)


def overwrite_option(help: str = "Replace existing outputs."):  # noqa: A002 (click's name)
    """``--overwrite``, with what it lets the command replace."""
    return click.option("--overwrite", is_flag=True, help=help)


def bit_depth_option(default: str):
    """``--bit-depth 8|16``; ``default`` says what the command writes without it."""
    return click.option(
        "--bit-depth",
        type=click.Choice(["8", "16"]),
        default=None,
        help=f"Output bits per sample [default: {default}].",
    )


def _parse_crop(ctx: click.Context, param: click.Parameter, value: str | None) -> Crop | None:
    if value is None:
        return None
    try:
        return Crop.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def crop_option(what: str):
    """``--crop X,Y,W,H``: work on a region of ``what`` only."""
    return click.option(
        "--crop",
        metavar="X,Y,W,H",
        callback=_parse_crop,
        default=None,
        help=f"Work on this region of {what} only (pixels of the upright image).",
    )


max_output_option = click.option(
    "--max-output-mp",
    type=click.FloatRange(0),
    default=DEFAULT_MAX_OUTPUT_MP,
    show_default=True,
    help="Stop before any work when the output would have more megapixels than this "
    "(0: no limit). The output's size, time and memory are estimated and printed first.",
)


def route_options(command):
    """``--route/--no-route``, ``--route-threshold``, ``--coarse-model``, ``--save-route``:
    detail routing (:mod:`burstsr.refiner.route`), declared once for ``run`` and ``enhance``."""
    options = [
        click.option(
            "--route/--no-route",
            default=True,
            show_default=True,
            help="Run the deep model only where there is detail (whole tiles, or windows around "
            "the detail in a tile), a small coarse network on the rest: faster on images mostly "
            "flat (night sky, microscopy backgrounds); a model without a coarse network beside "
            "it runs on every tile.",
        ),
        click.option(
            "--route-threshold",
            type=click.FloatRange(0),
            default=DEFAULT_ROUTE_THRESHOLD,
            show_default=True,
            help="Detail score (98th percentile of the luma's gradient, 8-bit levels per frame "
            "pixel) from which an area goes to the deep model; 0 sends everything.",
        ),
        click.option(
            "--coarse-model",
            default=None,
            help="The coarse network [default: the one shipped beside a shipped model; other "
            "models are not routed without one].",
        ),
        click.option(
            "--save-route",
            type=click.Path(path_type=Path),
            default=None,
            help="Write the routing map: what the deep model restored bright (its windows "
            "outlined in cyan), the rest dim, the tile grid in yellow.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def check_sample(sample: int | None, model: str, generator) -> None:
    """Refuse ``--sample`` before any work unless ``generator`` is an any-scale model."""
    if sample is not None and not generator.config.any_scale:
        raise click.BadParameter(
            f"model {model} renders no latent to draw from; use an any-scale model "
            "(--model anyscale)",
            param_hint="--sample",
        )


def outscale_options(command):
    """``--outscale S`` / ``--width W``: any output size, for every model; ``--sample SEED``
    for an any-scale model."""
    from burstsr.refiner.outscale import OUTSCALE_RANGE

    command = click.option(
        "--sample",
        type=int,
        default=None,
        metavar="SEED",
        help="Any-scale model: draw its latent from the distribution the encoder gives, with this "
        "seed, instead of reading its mean: one of several plausible restorations of what the "
        "merge leaves open (another seed, another draw).",
    )(command)
    command = click.option(
        "--width",
        type=click.IntRange(8),
        default=None,
        help="Output width in pixels (the height in proportion).",
    )(command)
    return click.option(
        "--outscale",
        type=click.FloatRange(*OUTSCALE_RANGE),
        default=None,
        help="Output size as a multiple of the frames' [default: the model's, 4]; an any-scale "
        "model (--model anyscale) renders that size directly, another model's output is resized "
        "with a good filter (area when shrinking, Lanczos when enlarging).",
    )(command)
