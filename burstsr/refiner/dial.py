"""The fidelity-to-texture dial (``--strength``): a model's output blended with the output of the
model it started from.

An adversarial model trained from a fidelity model (``train --init``) invents texture; the model
it started from gives the most faithful restoration. ``--strength s`` outputs ``(1 - s)`` of the
start's restoration plus ``s`` of the adversarial one's, pixel by pixel: image interpolation, which
X. Wang et al. ("ESRGAN", 2018) compare with interpolating the two networks' weights. Here the
weights' blend was measured and replaced (docs/model-card.md): halfway between two models that
each leave no grid-locked pattern, the blended network painted one of its own. ``0`` is the start
exactly and ``1`` the model itself; in between both networks run on every tile, so it costs
twice the time of either.
"""

from __future__ import annotations

import torch
from torch import nn

from burstsr.refiner.networks import Generator, GeneratorConfig

__all__ = ["Dial", "check_dial_pair"]


def check_dial_pair(start: GeneratorConfig, end: GeneratorConfig) -> str | None:
    """Why the outputs of models of ``start`` and ``end`` cannot be blended pixel by pixel (they
    read or write differently), or None when they can."""
    for name in ("scale", "unshuffle"):
        if getattr(start, name) != getattr(end, name):
            return f"its {name} is {getattr(end, name)}, the start's {getattr(start, name)}"
    if start.confidence != end.confidence:
        reader, other = ("it", "the start") if end.confidence else ("the start", "it")
        return f"{reader} reads the merge's confidence map, {other} does not"
    if start.merge_reads() != end.merge_reads():
        return f"it reads --kernel {end.merge_kernel} merges, the start {start.merge_kernel} ones"
    if start.any_scale or end.any_scale:
        return "an any-scale model renders its own output size"
    return None


class Dial(nn.Module):
    """``(1 - strength) * start(x) + strength * end(x)``: runs where a :class:`Generator` runs
    for inference (tiled enhance, routing, ensembles, time estimates), with ``end``'s config.

    Args:
        start: the model ``end`` was trained from (what strength 0 gives).
        end: the model itself (what strength 1 gives).
        strength: strictly between 0 and 1 (at the ends load the one model instead).
    """

    def __init__(self, start: Generator, end: Generator, strength: float) -> None:
        super().__init__()
        why = check_dial_pair(start.config, end.config)
        if why:
            raise ValueError(f"the two models cannot be blended: {why}")
        if not 0.0 < strength < 1.0:
            raise ValueError(f"strength {strength:g}: expected a value between 0 and 1")
        self.start, self.end, self.strength = start, end, float(strength)
        self.config = end.config

    def pad_to_blocks(self, x: torch.Tensor) -> torch.Tensor:
        """As :meth:`Generator.pad_to_blocks` (both models fold alike)."""
        return self.end.pad_to_blocks(x)

    def receptive_radius(self) -> int:
        """How far an output pixel sees: the farther of the two models' reach."""
        return max(self.start.receptive_radius(), self.end.receptive_radius())

    @property
    def networks(self) -> tuple[Generator, Generator]:
        """The two models, start first."""
        return self.start, self.end

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.lerp(self.start(x).float(), self.end(x).float(), self.strength)
