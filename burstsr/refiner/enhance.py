"""Tiled inference: run the generator on an image of any size with bounded memory.

The image is cut into ``tile`` x ``tile`` tiles. Each is run with ``tile_pad`` pixels of real
context around it (clamped at the image's edges, where the network's own zero padding applies,
exactly as for the whole image), so with a pad at least the network's receptive radius every
tile's output equals the whole-image output. Neighbouring outputs overlap by ``2 * blend``
pixels and are cross-faded with linear ramps, so even a network that sees further than the pad
shows no seam. The activations in memory are those of one padded tile, whatever the image size.
For a model that folds its input (``unshuffle`` N), tiles, context and cross-fades are whole
N x N blocks, so every tile folds exactly as the whole image does. With ``ensemble`` every tile
is run in its 8 orientations (flips and quarter turns), each output turned back, and the 8
averaged (the "self-ensemble" of the SR literature): 8 times the work for a little accuracy.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import numpy as np
import torch

from burstsr.burst.camera import linear_to_srgb
from burstsr.device import autocast
from burstsr.errors import InputError
from burstsr.io import format_depth, read_image, write_image
from burstsr.io.confidence import confidence_channel
from burstsr.io.crop import Crop
from burstsr.refiner.networks import Generator

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (tiles done, tiles in all)
DEFAULT_TILE = 256  # input pixels a tile, for a model that does not fold its input


def _ramp(length: int, fade_start: bool, fade_end: bool, blend: int) -> np.ndarray:
    """1-D weights: linear ramps of ``2 * blend`` samples at the ends that fade, 1 elsewhere."""
    w = np.ones(length, np.float32)
    n = min(2 * blend, length)
    if n and fade_start:
        w[:n] *= (np.arange(n, dtype=np.float32) + 0.5) / n
    if n and fade_end:
        w[-n:] *= ((np.arange(n, dtype=np.float32) + 0.5) / n)[::-1]
    return w


def _blocks(n: int, u: int) -> int:
    """``n`` rounded up to whole ``u``-pixel blocks."""
    return -(-n // u) * u


def tile_plan(
    generator: Generator, height: int, width: int, tile: int | None, tile_pad: int | None
) -> tuple[int, int, int]:
    """``(tile, blend, pad)`` in input pixels, whole blocks, as :func:`enhance_image` runs an
    image of ``height`` x ``width`` (see its arguments)."""
    u = generator.config.unshuffle
    tile, blend = (DEFAULT_TILE * u if tile is None else tile), 8
    if tile <= 0 or tile >= max(height, width):
        tile, blend = max(height, width), 0
    blend = min(blend, tile // 4)
    pad = generator.receptive_radius() if tile_pad is None else tile_pad
    return _blocks(tile, u), _blocks(blend, u), _blocks(pad, u)


def _infer(generator: Generator, patch: torch.Tensor, ensemble: bool) -> torch.Tensor:
    """The generator on ``patch`` ``(1, 3, h, w)``; with ``ensemble``, the mean of its outputs
    over the 8 flips and quarter turns of the patch, each turned back."""
    if not ensemble:
        return generator(patch).float()
    s, (h, w) = generator.config.scale, patch.shape[-2:]
    patch = generator.pad_to_blocks(patch)  # whole blocks first, so every turn folds alike
    total = torch.zeros(())
    for flip in (False, True):
        x = patch.flip(-1) if flip else patch
        for k in range(4):
            y = torch.rot90(generator(torch.rot90(x, k, (-2, -1))).float(), -k, (-2, -1))
            total = total + (y.flip(-1) if flip else y)
    return (total / 8)[..., : h * s, : w * s]


@torch.inference_mode()
def enhance_image(
    generator: Generator,
    image: np.ndarray,
    *,
    tile: int | None = None,
    tile_pad: int | None = None,
    half: bool = False,
    ensemble: bool = False,
    confidence: np.ndarray | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """Upscale ``image`` (``float32 (H, W, 3)`` in [0, 1]) with ``generator``, tile by tile.

    Args:
        generator: the model, on the device to run on (put in ``eval()`` mode here).
        tile: tile size in input pixels (the memory knob); 0 runs the whole image at once;
            default: :data:`DEFAULT_TILE` times the model's ``unshuffle``.
        tile_pad: context around each tile; default: the generator's receptive radius.
        half: fp16 autocast (CUDA only).
        ensemble: average the 8 orientations of every tile (8 times slower).
        confidence: for a generator that reads it (``config.confidence``), the merge's
            confidence map ``(H, W)`` (:attr:`MergeResult.confidence`); without one such a
            generator reads the confidence of an evenly sampled 8-frame burst everywhere.

    Returns:
        ``float32 (H * scale, W * scale, 3)``, clipped to [0, 1].
    """
    generator.eval()
    device = next(generator.parameters()).device
    if half and device.type != "cuda":
        raise InputError("--half: half precision runs only on CUDA; drop --half on the CPU")
    scale = generator.config.scale
    h, w = image.shape[:2]
    if generator.config.confidence:
        if confidence is None:
            log.warning(
                "this model reads the merge's confidence map; none given, so it assumes an "
                "evenly sampled 8-frame burst (burstsr run passes the real one)"
            )
            confidence = np.full((h, w), 8.0, np.float32)
        if confidence.shape != (h, w):
            raise InputError(
                f"confidence map {confidence.shape[1]}x{confidence.shape[0]} differs from the "
                f"image {w}x{h}"
            )
        extra = confidence_channel(confidence)  # joined to the image tile by tile
    else:
        extra = None
    tile, blend, pad = tile_plan(generator, h, w, tile, tile_pad)
    out = np.zeros((h * scale, w * scale, 3), np.float32)
    weight = np.zeros((h * scale, w * scale, 1), np.float32)
    ys, xs = range(0, h, tile), range(0, w, tile)
    total, done = len(ys) * len(xs), 0
    for y0 in ys:
        for x0 in xs:
            # The tile's own area, grown by `blend` into its neighbours (the cross-fade zone).
            ay0, ay1 = max(y0 - blend, 0), min(y0 + tile + blend, h)
            ax0, ax1 = max(x0 - blend, 0), min(x0 + tile + blend, w)
            # Plus context the network needs, clamped to the image.
            cy0, cy1 = max(ay0 - pad, 0), min(ay1 + pad, h)
            cx0, cx1 = max(ax0 - pad, 0), min(ax1 + pad, w)
            patch = image[cy0:cy1, cx0:cx1, :3]
            if extra is not None:
                patch = np.concatenate([patch, extra[cy0:cy1, cx0:cx1]], axis=2)
            patch = torch.from_numpy(np.ascontiguousarray(patch))
            patch = patch.permute(2, 0, 1)[None].to(device)
            with autocast(device, enabled=half):
                result = _infer(generator, patch, ensemble)
            result = result[0].clamp_(0, 1).permute(1, 2, 0).cpu().numpy()
            core = result[
                (ay0 - cy0) * scale : (ay1 - cy0) * scale, (ax0 - cx0) * scale : (ax1 - cx0) * scale
            ]
            wy = _ramp(core.shape[0], ay0 > 0, ay1 < h, blend * scale)
            wx = _ramp(core.shape[1], ax0 > 0, ax1 < w, blend * scale)
            wt = (wy[:, None] * wx[None, :])[:, :, None]
            out[ay0 * scale : ay1 * scale, ax0 * scale : ax1 * scale] += core * wt
            weight[ay0 * scale : ay1 * scale, ax0 * scale : ax1 * scale] += wt
            done += 1
            if progress is not None:
                progress(done, total)
    out /= weight
    return out


def enhance_file(
    generator: Generator,
    source: str | os.PathLike,
    output: str | os.PathLike,
    *,
    tile: int | None = None,
    tile_pad: int | None = None,
    half: bool = False,
    ensemble: bool = False,
    bit_depth: int | None = None,
    confidence: np.ndarray | None = None,
    crop: Crop | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """Read ``source`` (its ``crop`` region only, when given), enhance it (``confidence``:
    see :func:`enhance_image`), write ``output`` atomically (16 bit if the input was, unless
    ``bit_depth`` says otherwise; gray stays gray). A RAW file's linear pixels are sRGB-encoded
    first, as a merge of it would be (the models read and write display-encoded images).
    Returns the enhanced pixels."""
    image = read_image(source)
    pixels = linear_to_srgb(image.pixels) if image.linear else image.pixels
    if crop is not None:
        pixels = crop.apply(pixels, source)
    result = enhance_image(
        generator,
        pixels,
        tile=tile,
        tile_pad=tile_pad,
        half=half,
        ensemble=ensemble,
        confidence=confidence,
        progress=progress,
    )
    depth = bit_depth or (16 if image.bit_depth > 8 or image.linear else 8)
    depth = format_depth(output, depth)
    write_image(output, result[:, :, 0] if image.gray else result, bit_depth=depth)
    return result
