"""Options shared by several commands, declared once."""

from __future__ import annotations

import click

from burstsr.refiner.checkpoint import DEFAULT_MODEL

model_option = click.option(
    "--model",
    default=DEFAULT_MODEL,
    show_default=True,
    help="A shipped model (fidelity, gan), a run folder (its best.pt) or a .pt checkpoint.",
)
tile_option = click.option(
    "--tile",
    type=click.IntRange(0),
    default=256,
    show_default=True,
    help="Enhance tile size in input pixels (0: the whole image at once).",
)
