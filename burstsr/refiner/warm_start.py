"""Starting a generator from another one's weights (``burstsr train --init``): a folded head
from an unfolded one, a confidence channel from none, a deeper body from a shallower one."""

from __future__ import annotations

import torch

from burstsr.refiner.networks import Generator


def init_from(generator: Generator, source: Generator) -> int:
    """Copy ``source``'s weights into ``generator`` wherever the shapes agree.

    A head that reads a folded input (``unshuffle`` N) takes the head of an unfolded one spread
    evenly over the N * N sub-pixel channels, so it starts out seeing the block averages the
    source saw; a head that reads a confidence channel the source did not starts with zero
    weights on it. Residual blocks beyond the source's depth start as the identity (their last
    BN scale, or without BN their last conv, is zeroed), so a deeper generator starts out
    computing exactly what the source computes. Other weights that do not fit keep their fresh
    initialisation.

    Returns:
        How many of ``generator``'s tensors were taken from ``source``.
    """
    target = generator.state_dict()
    u = generator.config.unshuffle // source.config.unshuffle
    taken = 0
    for name, weight in source.state_dict().items():
        if name not in target:
            continue
        if name == "head.0.weight" and target[name].shape != weight.shape:
            if target[name].shape[1] < weight.shape[1] * u * u:
                continue  # the source reads a confidence channel this one does not
            # PixelUnshuffle orders channels as (colour, sub-pixel): repeat each colour u*u times.
            weight = weight.repeat_interleave(u * u, dim=1) / (u * u)
            # A confidence channel the source did not read starts with zero weight.
            weight = torch.cat(
                [
                    weight,
                    weight.new_zeros(
                        weight.shape[0], target[name].shape[1] - weight.shape[1], *weight.shape[2:]
                    ),
                ],
                dim=1,
            )
        if target[name].shape == weight.shape:
            target[name], taken = weight.clone(), taken + 1
    generator.load_state_dict(target)
    for block in list(generator.body)[len(source.body) :]:
        block.make_identity()
    return taken
