"""Tiled inference: run the generator on an image of any size with bounded memory.

The image is cut into ``tile`` x ``tile`` tiles. Each is run with ``tile_pad`` pixels of real
context around it (clamped at the image's edges, where the network's own zero padding applies,
exactly as for the whole image). With a pad at least the network's receptive radius every
tile's output equals the whole-image output; the default is the context the model was
measured to need (:func:`burstsr.refiner.context.needed_context`: within a 16-bit level of the
whole image's output, at about half the receptive radius of the deep models, so the padded
tiles cost a quarter less). Neighbouring outputs overlap by ``2 * blend`` pixels and are
cross-faded with linear ramps, so even a network that sees further than the pad shows no
seam. The activations in memory are those of one padded tile, whatever the image size.
For a model that folds its input (``unshuffle`` N), tiles, context and cross-fades are whole
N x N blocks, so every tile folds exactly as the whole image does. With ``ensemble`` every tile
is run in its 8 orientations (flips and quarter turns), each output turned back, and the 8
averaged (the "self-ensemble" of the SR literature): 8 times the work for a little accuracy.
"""

from __future__ import annotations

import logging
import os
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from burstsr.burst.camera import linear_to_srgb
from burstsr.device import check_half, inference_precision, layout_for_half
from burstsr.errors import InputError
from burstsr.io import format_depth, read_image, write_image
from burstsr.io.confidence import ConfidenceTiles
from burstsr.io.crop import Crop
from burstsr.io.image import unit_float
from burstsr.io.png_rows import PngRows, output_file
from burstsr.memory import release_free_memory
from burstsr.refiner.context import needed_context, whole_blocks
from burstsr.refiner.networks import Generator, fold_batch_norm, weights_version
from burstsr.refiner.outscale import resize_to

if TYPE_CHECKING:
    from burstsr.refiner.route import Routing

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (tiles done, tiles in all)
Output = np.ndarray | PngRows  # where a result goes: an array, or a PNG written row by row
DEFAULT_TILE = 256  # input pixels a tile, for a model that does not fold its input


def ramp(length: int, fade_start: bool, fade_end: bool, blend: int) -> np.ndarray:
    """1-D weights: linear ramps of ``2 * blend`` samples at the ends that fade, 1 elsewhere."""
    w = np.ones(length, np.float32)
    n = min(2 * blend, length)
    if n and fade_start:
        w[:n] *= (np.arange(n, dtype=np.float32) + 0.5) / n
    if n and fade_end:
        w[-n:] *= ((np.arange(n, dtype=np.float32) + 0.5) / n)[::-1]
    return w


def tile_plan(
    generator: Generator, height: int, width: int, tile: int | None, tile_pad: int | None
) -> tuple[int, int, int]:
    """``(tile, blend, pad)`` in input pixels, whole blocks, as :func:`enhance_image` runs an
    image of ``height`` x ``width`` (see its arguments)."""
    u = generator.config.unshuffle
    tile, blend = (DEFAULT_TILE * u if tile is None else tile), 8
    single = tile <= 0 or tile >= max(height, width)
    if single:
        tile, blend = max(height, width), 0
    blend = min(blend, tile // 4)
    if tile_pad is None:  # one tile needs no context; tiles, what the model needs
        tile_pad = 0 if single else needed_context(generator)
    return whole_blocks(tile, u), whole_blocks(blend, u), whole_blocks(tile_pad, u)


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


@dataclass(frozen=True)
class Box:
    """One tile: its own area ``y0:y1, x0:x1`` (input pixels) and that area grown by the
    cross-fade zone into its neighbours, ``ay0:ay1, ax0:ax1``."""

    y0: int
    y1: int
    x0: int
    x1: int
    ay0: int
    ay1: int
    ax0: int
    ax1: int


def tile_boxes(h: int, w: int, tile: int, blend: int) -> list[list[Box]]:
    """The tiles of an ``h`` x ``w`` image, row by row."""
    rows = []
    for y0 in range(0, h, tile):
        row = []
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            ay0, ay1 = max(y0 - blend, 0), min(y1 + blend, h)
            ax0, ax1 = max(x0 - blend, 0), min(x1 + blend, w)
            row.append(Box(y0, y1, x0, x1, ay0, ay1, ax0, ax1))
        rows.append(row)
    return rows


def output_shape(generator: Generator, size: tuple[int, int]) -> tuple[int, int]:
    """``(height, width)`` of ``generator``'s output on an input of ``size``."""
    scale = generator.config.scale
    return size[0] * scale, size[1] * scale


def inference_network(generator: Generator) -> Generator:
    """``generator`` as the tiles run it: a copy with its batch norms folded into the
    convolutions before them (:func:`burstsr.refiner.networks.fold_batch_norm`), its weights
    in the channels-last layout on the CPU, where oneDNN's convolutions run fastest in it
    (docs/benchmarks.md: about 1.3x on a 2-core AVX2 machine), and otherwise in the layout the
    generator's are. The same output within float rounding. Made once per set of weights,
    device and layout, and remembered. A generator that hooks watch (``burstsr inspect``)
    runs as it is."""
    modules = list(generator.modules())
    if any(m._forward_hooks or m._forward_pre_hooks for m in modules):
        return generator
    device = next(generator.parameters()).device
    channels_last = device.type == "cpu" or any(
        m.weight.is_contiguous(memory_format=torch.channels_last) and not m.weight.is_contiguous()
        for m in modules
        if isinstance(m, torch.nn.Conv2d)
    )
    key = (weights_version(generator), device, channels_last)
    known = _FOLDED.get(generator)
    if key[0] is not None and known is not None and known[0] == key:
        return known[1]
    network = fold_batch_norm(generator)
    if channels_last:
        network.to(memory_format=torch.channels_last)
    _FOLDED[generator] = (key, network)
    return network


# inference_network's copies, by the generator they were made from (forgotten with it).
_FOLDED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@torch.inference_mode()
def run_tile(
    generator: Generator,
    image: np.ndarray,
    extra: ConfidenceTiles | None,
    box: Box,
    pad: int,
    *,
    half: bool = False,
    ensemble: bool = False,
) -> np.ndarray:
    """``generator`` on ``box``'s area of ``image`` (``extra``: the channel joined to it), with
    ``pad`` pixels of context clamped to the image: ``float32 (area * scale, 3)`` in [0, 1]."""
    h, w = image.shape[:2]
    scale, device = generator.config.scale, next(generator.parameters()).device
    cy0, cy1 = max(box.ay0 - pad, 0), min(box.ay1 + pad, h)
    cx0, cx1 = max(box.ax0 - pad, 0), min(box.ax1 + pad, w)
    pixels = image[cy0:cy1, cx0:cx1, :3]
    if extra is not None:  # the image's channels and the extra one in one array, no join
        more = extra[cy0:cy1, cx0:cx1]
        patch = np.empty((*pixels.shape[:2], 3 + more.shape[2]), np.float32)
        unit_float(pixels, out=patch[:, :, :3])
        patch[:, :, 3:] = more
        del more
    else:
        patch = unit_float(pixels)
    patch = torch.from_numpy(np.ascontiguousarray(patch)).permute(2, 0, 1)[None].to(device)
    with inference_precision(device, half):
        result = _infer(inference_network(generator), patch, ensemble)
    result = result[0].float().clamp_(0, 1).permute(1, 2, 0).cpu().numpy()
    return result[
        (box.ay0 - cy0) * scale : (box.ay1 - cy0) * scale,
        (box.ax0 - cx0) * scale : (box.ax1 - cx0) * scale,
    ]


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
    routing: Routing | None = None,
    progress: Progress | None = None,
    out: Output | None = None,
    size: tuple[int, int] | None = None,
    seed: int | None = None,
) -> Output:
    """Upscale ``image`` (``float32 (H, W, 3)`` in [0, 1], or its uint8 / uint16 samples,
    converted tile by tile) with ``generator``, tile by tile.

    Args:
        generator: the model, on the device to run on (put in ``eval()`` mode here).
        tile: tile size in input pixels (the memory knob); 0 runs the whole image at once;
            default: :data:`DEFAULT_TILE` times the model's ``unshuffle``.
        tile_pad: context around each tile; default: what the generator needs
            (:func:`burstsr.refiner.context.needed_context`; ``generator.receptive_radius()``
            makes the tiles exact).
        half: half precision: fp16 autocast on CUDA, bfloat16 on a CPU with native bfloat16
            (:func:`burstsr.device.check_half`; there the networks' weights are switched to
            the channels-last layout, in place).
        ensemble: average the 8 orientations of every tile (8 times slower).
        confidence: for a generator that reads it (``config.confidence``), the merge's
            confidence map ``(H, W)`` (:attr:`MergeResult.confidence`); without one such a
            generator reads the confidence of an evenly sampled 8-frame burst everywhere.
        routing: run ``generator`` only where there is detail (whole tiles, or windows around
            the detail in a tile), and ``routing.coarse`` elsewhere
            (:mod:`burstsr.refiner.route`); what was routed where is filled into it.
        out: an array ``(H * scale, W * scale, 3)`` to write the result into: float32 in
            [0, 1], or uint8 / uint16 (rounded to the full range), which saves the memory of a
            float image and of a conversion before writing a file; or a PNG being written
            (:func:`burstsr.io.png_rows.output_file`), which takes the rows as they are
            finished, so the output is never held whole.
        size, seed: for an any-scale model (``config.any_scale``): render at ``size``
            ``(height, width)`` instead of x scale, and draw its latent with ``seed`` instead
            of reading the mean (:func:`burstsr.refiner.anyscale.render_image`). Other models
            ignore ``size`` (their output is x scale; callers resize it).

    Returns:
        ``float32 (H * scale, W * scale, 3)``, clipped to [0, 1] (or ``out``, filled).

    Raises:
        InputError: ``half`` on a CPU without native bfloat16 or a device other than CUDA and
            the CPU; ``seed`` for a fixed-scale model; ``ensemble`` with a
            size or seed for an any-scale model.
    """
    generator.eval()
    if seed is not None and not generator.config.any_scale:
        raise InputError("--sample: only an any-scale model has a latent to draw from")
    if generator.config.any_scale and (size is not None or seed is not None):
        from burstsr.refiner.anyscale import render_image

        if ensemble:
            raise InputError("--ensemble: not with --outscale, --width or --sample")
        if half:
            log.warning("--half: the any-scale renderer runs in full precision")
        scale = generator.config.scale
        size = size or (image.shape[0] * scale, image.shape[1] * scale)
        return render_image(
            generator,
            image,
            size,
            tile=tile,
            tile_pad=tile_pad,
            seed=seed,
            progress=progress,
            out=out,
        )
    device = next(generator.parameters()).device
    if half:
        check_half(device)
        layout_for_half(generator, device, half)
        if routing is not None:
            layout_for_half(routing.coarse, device, half)
    scale = generator.config.scale
    h, w = image.shape[:2]
    if generator.config.confidence:
        if confidence is None:
            log.warning(
                "this model reads the merge's confidence map; none given, so it assumes an "
                "evenly sampled 8-frame burst (burstsr run passes the real one)"
            )
            confidence = np.broadcast_to(np.float32(8.0), (h, w))  # a view: no memory
        if confidence.shape != (h, w):
            raise InputError(
                f"confidence map {confidence.shape[1]}x{confidence.shape[0]} differs from the "
                f"image {w}x{h}"
            )
        extra = ConfidenceTiles(confidence)  # encoded and joined to the image tile by tile
    else:
        extra = None
    tile, blend, pad = tile_plan(generator, h, w, tile, tile_pad)
    boxes = tile_boxes(h, w, tile, blend)
    total, done = sum(len(row) for row in boxes), 0
    fine = np.ones((len(boxes), len(boxes[0])), bool)
    window_pad = pad
    if routing is not None:
        u = generator.config.unshuffle
        # One tile needs no context, a window in it does: weighed with the model's reach, and
        # measured (once per model) only when a window is made.
        reach = pad or whole_blocks(generator.receptive_radius(), u)
        fine = routing.select(image, boxes, reach)  # on a reduced copy, made in bands
        if routing.windows and tile_pad is None and pad == 0:
            window_pad = whole_blocks(needed_context(generator), u)
    started = time.perf_counter()
    shape = (h * scale, w * scale, 3)
    if out is None:
        out = np.empty(shape, np.float32)
    elif out.shape != shape or out.dtype not in (np.float32, np.uint8, np.uint16):
        raise ValueError(
            f"out: expected float32, uint8 or uint16 {shape}, got {out.dtype} {out.shape}"
        )
    # One row of tiles at a time, left to right: each tile's output is summed with its
    # cross-fade weights into a window of the row's band only as wide as the tiles that still
    # add to it. Columns left of the next tile are finished: their rows that the next row of
    # tiles does not reach are written out, the others carried to it.
    carry = None
    for r, row in enumerate(boxes):
        top, bottom = row[0].ay0 * scale, row[0].ay1 * scale
        final = boxes[r + 1][0].ay0 * scale - top if r + 1 < len(boxes) else bottom - top
        blender = _RowBlender(bottom - top, final, w * scale, carry)
        for c, box in enumerate(row):
            windows = routing.windows.get((r, c)) if routing is not None else None
            if fine[r, c] and not windows:
                core = run_tile(generator, image, extra, box, pad, half=half, ensemble=ensemble)
            elif fine[r, c]:  # the deep model on the parts that hold detail, coarse around them
                core = routing.run_window(
                    generator, image, extra, box, windows, window_pad, half=half, ensemble=ensemble
                )
            else:
                core = routing.run_coarse(image, extra, box, half=half)
            wy = ramp(core.shape[0], box.ay0 > 0, box.ay1 < h, blend * scale)
            wx = ramp(core.shape[1], box.ax0 > 0, box.ax1 < w, blend * scale)
            blender.add(core, (wy[:, None] * wx[None, :])[:, :, None], box.ax0 * scale, out, top)
            del core
            release_free_memory()  # the tile's freed buffers: keep the heap from creeping up
            done += 1
            if progress is not None:
                progress(done, total)
        carry = blender.finish(out, top)
    if routing is not None:
        routing.seconds["tiles"] = time.perf_counter() - started
    return out


class _RowBlender:
    """The cross-fade sums of one row of tiles, kept for the columns still open: a window
    from the current tile's left edge to its right edge (the columns left of it are finished
    and flushed), plus the carried sums of the rows the previous row of tiles reached. Each
    pixel gets the same additions in the same order as a band as wide as the image would.

    Args:
        rows: the band's height (the row of tiles' reach).
        final: rows of it that the next row of tiles does not reach (written out when
            finished; the rest is carried).
        width: the output's width.
        carry: what the previous row left for this one's top rows (values, weights), or None.
    """

    def __init__(
        self, rows: int, final: int, width: int, carry: tuple[np.ndarray, np.ndarray] | None
    ) -> None:
        self.rows, self.final, self.carry = rows, final, carry
        self.values = np.zeros((rows, 0, 3), np.float32)
        self.weights = np.zeros((rows, 0, 1), np.float32)
        self.x0 = 0  # the window's first column
        left = rows - final
        self.next_carry = (
            np.empty((left, width, 3), np.float32),
            np.empty((left, width, 1), np.float32),
        )

    def add(self, core: np.ndarray, wt: np.ndarray, x0: int, out: Output, top: int) -> None:
        """Add a tile's output ``core`` weighted by ``wt`` at column ``x0``; flush the columns
        left of it into ``out`` (band rows from ``top``)."""
        x1 = x0 + core.shape[1]
        end = self.x0 + self.values.shape[1]
        if x0 > self.x0:
            self._flush(self.x0, min(x0, end), out, top)
        kept = max(end - x0, 0)  # columns the old window shares with this tile
        values = np.zeros((self.rows, x1 - x0, 3), np.float32)
        weights = np.zeros((self.rows, x1 - x0, 1), np.float32)
        values[:, :kept] = self.values[:, x0 - self.x0 : end - self.x0]
        weights[:, :kept] = self.weights[:, x0 - self.x0 : end - self.x0]
        if self.carry is not None:  # the carried sums come first, as in a full-width band
            n = len(self.carry[0])
            values[:n, kept:] += self.carry[0][:, x0 + kept : x1]
            weights[:n, kept:] += self.carry[1][:, x0 + kept : x1]
        values += core * wt
        weights += wt
        self.values, self.weights, self.x0 = values, weights, x0

    def finish(self, out: Output, top: int) -> tuple[np.ndarray, np.ndarray]:
        """Flush the last columns; returns the carry for the next row of tiles."""
        self._flush(self.x0, self.x0 + self.values.shape[1], out, top)
        self.values = self.weights = None
        return self.next_carry

    def _flush(self, a: int, b: int, out: Output, top: int) -> None:
        """Columns ``a:b`` are finished: normalise their final rows into ``out``, carry the
        rest."""
        cols = slice(a - self.x0, b - self.x0)
        values, weights = self.values[:, cols], self.weights[:, cols]
        f = self.final
        self.next_carry[0][:, a:b] = values[f:]
        self.next_carry[1][:, a:b] = weights[f:]
        rows = np.divide(values[:f], weights[:f], out=values[:f])
        emit_rows(rows, out, (slice(top, top + f), slice(a, b)))


def emit_rows(rows: np.ndarray, out: Output, key: tuple[slice, slice]) -> None:
    """Finished float rows into ``out[key]``: copied, or rounded to its integer range (``rows``
    is used as the scratch space)."""
    if out.dtype == np.float32:
        out[key] = rows
        return
    peak = np.float32(np.iinfo(out.dtype).max)
    # In place: ``rows`` is a band of about a tile's height across the whole image (75 MB of a
    # 6000 px wide output), and each temporary would be as large.
    np.clip(rows, 0.0, 1.0, out=rows)
    np.multiply(rows, peak, out=rows)
    out[key] = np.rint(rows, out=rows)


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
    routing: Routing | None = None,
    save_route: str | os.PathLike | None = None,
    size: tuple[int, int] | None = None,
    seed: int | None = None,
    progress: Progress | None = None,
) -> tuple[int, int]:
    """Read ``source`` (its ``crop`` region only, when given), enhance it (``confidence``:
    see :func:`enhance_image`), write ``output`` atomically (16 bit if the input was, unless
    ``bit_depth`` says otherwise; gray stays gray). A RAW file's linear pixels are sRGB-encoded
    first, as a merge of it would be (the models read and write display-encoded images).
    ``routing``: see :func:`enhance_image`; ``save_route``: write its routing map there;
    ``size``: resize the output to ``(height, width)`` (:func:`~burstsr.refiner.outscale.
    resize_to`; an any-scale model renders at that size directly); ``seed``: an any-scale
    model's latent drawn with it (:func:`enhance_image`). Without a resize a PNG output is
    written as its rows are finished (:func:`~burstsr.io.png_rows.output_file`). Returns the
    output's ``(height, width)``."""
    image = read_image(source, keep_integers=True)  # tiles (and routing) convert their own
    pixels = linear_to_srgb(image.pixels) if image.linear else image.pixels
    if crop is not None:
        pixels = crop.apply(pixels, source)
    depth = bit_depth or (16 if image.bit_depth > 8 or image.linear else 8)
    depth = format_depth(output, depth)
    gray = image.gray
    del image  # the decoded file; ``pixels`` is what the network reads
    kwargs = dict(tile=tile, tile_pad=tile_pad, half=half, ensemble=ensemble)
    kwargs.update(confidence=confidence, routing=routing, progress=progress, size=size, seed=seed)
    if size is None:  # written as it comes, in integers of the file's depth (a PNG row by row)
        shape = output_shape(generator, pixels.shape[:2])
        with output_file(output, shape, depth, gray=gray) as out:
            enhance_image(generator, pixels, out=out, **kwargs)
            _save_route(save_route, routing, pixels)
        return shape
    result = enhance_image(generator, pixels, **kwargs)
    _save_route(save_route, routing, pixels)
    del pixels
    final = resize_to(result, size)
    del result
    write_image(output, final[:, :, 0] if gray else final, bit_depth=depth)
    return final.shape[:2]


def _save_route(path: str | os.PathLike | None, routing: Routing | None, image: np.ndarray) -> None:
    """The routing map of ``image`` written to ``path``, when both are given."""
    if path is not None and routing is not None:
        from burstsr.refiner.route import route_map

        write_image(path, route_map(image, routing))
