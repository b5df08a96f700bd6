"""Options shared by several commands, declared once."""

from __future__ import annotations

import click

from burstsr.refiner.registry import DEFAULT_MODEL, SHIPPED


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
ensemble_option = click.option(
    "--ensemble",
    is_flag=True,
    help="Average the model over the 8 flips and quarter turns of each tile: 8x the time, "
    "a little more accuracy.",
)
