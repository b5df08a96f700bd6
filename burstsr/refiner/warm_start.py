"""Starting a generator from another one's weights (``burstsr train --init``): a folded head
from an unfolded one, a confidence channel from none, a deeper body from a shallower one, a
wider model from a narrower one."""

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
    computing exactly what the source computes. A wider generator (more ``channels``) takes
    the source's weights in its first channels (:func:`widen`): its extra channels compute
    from the start, but every layer reads them with zero weights, so it too starts out
    computing exactly what the source computes, and those weights learn from there. Other
    weights that do not fit keep their fresh initialisation.

    Returns:
        How many of ``generator``'s tensors were taken from ``source``.
    """
    target = generator.state_dict()
    u = generator.config.unshuffle // source.config.unshuffle
    widths = source.config.channels, generator.config.channels
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
        elif _widened(weight.shape, target[name].shape, widths):
            target[name], taken = widen(target[name], weight), taken + 1
    generator.load_state_dict(target)
    for block in list(generator.body)[len(source.body) :]:
        block.make_identity()
    return taken


def _widened(small: torch.Size, large: torch.Size, widths: tuple[int, int]) -> bool:
    """Whether a tensor of shape ``large`` is one of shape ``small`` with its channels widened
    from ``widths[0]`` to ``widths[1]``: every dimension the same or ``k * widths[0]`` ->
    ``k * widths[1]`` (so an upsampling conv's ``f * f * C`` outputs widen for the same
    ``f`` only), the kernel's the same."""
    narrow, wide = widths
    if wide <= narrow or len(small) != len(large) or small == large or small[2:] != large[2:]:
        return False
    return all(
        a == b or (a % narrow == 0 and b == a // narrow * wide)
        for a, b in zip(small, large, strict=True)
    )


def widen(fresh: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``weight`` placed in the leading block of ``fresh`` (a wider layer's own initial
    values). For a conv (4 dimensions: out, in, kh, kw) the inputs beyond ``weight``'s are
    zeroed, so the layer reads the new channels with zero weights: its first outputs are the
    source's exactly, whatever the new channels hold, and its new outputs keep their fresh
    weights (the new channels compute something from the start, so the zeroed weights get
    gradients). Vectors (biases, BN statistics and scales, PReLU slopes) keep their first
    entries from ``weight``. PixelShuffle keeps a conv's first ``C * f * f`` outputs together
    in its first ``C`` channels, so the same holds across the upsampling stages."""
    out = fresh.clone()
    if weight.dim() == 4:
        out[:, weight.shape[1] :] = 0
    out[tuple(slice(0, n) for n in weight.shape)] = weight
    return out
