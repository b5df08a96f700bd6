"""What ``run`` and ``enhance`` share for detail routing: loading the coarse network beside a
model, and reporting and drawing what was routed where."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import click
import numpy as np

from burstsr.io import write_image
from burstsr.refiner.registry import COARSE

if TYPE_CHECKING:
    from burstsr.refiner.networks import Generator
    from burstsr.refiner.route import Routing

log = logging.getLogger("burstsr")


def load_routing(
    model: str, generator: Generator, route: bool, threshold: float, coarse_model: str | None
) -> Routing | None:
    """The routing for ``model`` (None: not routed): ``coarse_model``, else the coarse network
    shipped beside a shipped model. It must read and write what ``generator`` does."""
    from burstsr.refiner.checkpoint import load_generator
    from burstsr.refiner.route import Routing

    if not route:
        return None
    path = coarse_model or (str(COARSE[model]) if model in COARSE else None)
    if path is None or (coarse_model is None and not Path(path).is_file()):
        log.info("model %s has no coarse network beside it: every tile runs the model", model)
        return None
    device = next(generator.parameters()).device
    coarse = load_generator(path, device=device)
    fine, small = generator.config, coarse.config
    for name in ("scale", "unshuffle", "confidence"):
        if getattr(fine, name) != getattr(small, name):
            raise click.BadParameter(
                f"{path}: its {name} is {getattr(small, name)}, model {model}'s is "
                f"{getattr(fine, name)}; a coarse network must read and write what the model does",
                param_hint="--coarse-model",
            )
    return Routing(coarse, threshold)


def report_routing(
    routing: Routing | None, image: np.ndarray | None, save_route: Path | None
) -> None:
    """Log the routed share and the time of each pass; write the routing map if asked."""
    if routing is None or routing.fine is None:
        return
    from burstsr.refiner.route import route_map

    log.info(
        "routing: deep model on %d of %d tiles (%d of them only in windows around their "
        "detail), %.0f%% of the area; scoring %.1f s, tiles %.1f s",
        int(routing.fine.sum()),
        routing.fine.size,
        len(routing.windows),
        100 * routing.fraction,
        routing.seconds.get("score", 0.0),
        routing.seconds.get("tiles", 0.0),
    )
    if save_route is not None:
        write_image(save_route, route_map(image, routing))
