"""Before heavy work: how large the output will be, and about how long and how much memory it
will take, so ``merge``/``run``/``enhance`` can say what they are about to do and stop before a
job the user did not mean (a 12 MP burst through ``run`` is a 192 MP image).

The memory figures and the merge's seconds come from the costs measured on 2 CPU cores
(``benchmarks/bench_estimate.py`` prints them beside what each command really took); the
refiner's seconds come from timing the model on a small patch on the device it will run on.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from burstsr.errors import InputError

if TYPE_CHECKING:
    import torch

    from burstsr.refiner.networks import Generator

# Costs measured on 2 CPU cores (bench_estimate.py): the merge's seconds per megapixel (of the
# output grid) per frame, on the frames' grid and on a finer one (adaptive kernels; fitted to
# 7 frames of 800x600 at x4, 1600x1200 at x2 and 4000x3000 at x2: 9.5, 10.7 and 56.5 s);
# start-up (imports, model) and decoding/encoding per output megapixel.
MERGE_SECONDS_PER_MP_FRAME = {1: 0.05, "fine": 0.14}
START_SECONDS = {"merge": 0.5, "torch": 2.0}
IO_SECONDS_PER_MP = {"read": 0.03, "write": 0.1}
# Peak resident memory: what every process holds (Python, OpenCV; torch and a model when
# loaded); bytes per pixel of the merge's output grid (and, on a finer grid, of every frame it
# keeps); bytes per pixel of the refiner's output and input (a file's integers or a merge's
# floats and confidence); and its activations on one tile: working pixels (after folding) x
# channels x 4 bytes x TILE_ACTIVATIONS (the layers run one after another, the full-resolution
# end in strips, so the depth does not add up).
BASE_BYTES = {"merge": 250e6, "torch": 380e6}
MERGE_BYTES_PER_PX = {1: 90, "fine": 32, "fine_frames": 16}
ENHANCE_BYTES_PER_PX = {"out": 10, "in": 14}
TILE_ACTIVATIONS = 12

# merge --raw-path bayer on top of the demosaiced merge it starts from (the splat's time per
# kernel tap, 9 taps a sample at x1 and 25 at x2, and its memory, from 8 DNG frames of 12 MP:
# 54.2 s and 1.80 GB at x1, 284.4 s and 4.20 GB at x2 in all, on a slow day; over the
# demosaiced merge's estimate that is 0.052 s a tap at x1 and 0.092 s at x2). A tap costs more
# on a larger output grid (each one reads the kernel and adds into the accumulators at scattered
# places of it); beyond x2, unmeasured, the x2 rate.
BAYER_SECONDS_PER_MP_FRAME_TAP = {1: 0.052, 2: 0.092}
BAYER_BYTES_PER_PX = 24

# run's back-projection onto the frames: seconds per output megapixel, frame and iteration
# (7 frames, 30.7 MP out: 6 iterations in about 44 s on 2 cores; docs/benchmarks.md).
BACK_PROJECTION_SECONDS_PER_MP_FRAME = 0.035

DEFAULT_MAX_OUTPUT_MP = 64.0  # a 2000x2000 burst through run is 64 MP; 0 lifts the limit


@dataclass(frozen=True)
class Estimate:
    """An output of ``width`` x ``height``, about ``seconds`` (None: not estimated) and
    ``peak_bytes`` of memory (the whole process, host memory)."""

    width: int
    height: int
    seconds: float | None
    peak_bytes: float

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6

    def describe(self) -> str:
        """``"6400x4800 (30.7 MP), about 1 min 33 s and 1.6 GB of memory"``."""
        time_text = f"about {_duration(self.seconds)} and " if self.seconds is not None else ""
        return (
            f"{self.width}x{self.height} ({self.megapixels:.1f} MP), "
            f"{time_text}{self.peak_bytes / 1e9:.1f} GB of memory"
        )

    def then(self, other: Estimate) -> Estimate:
        """This job followed by ``other``: the later output, the summed time, the larger peak."""
        seconds = None if self.seconds is None or other.seconds is None else self.seconds
        if seconds is not None:
            seconds += other.seconds
        return Estimate(other.width, other.height, seconds, max(self.peak_bytes, other.peak_bytes))


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "1 s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min {rest} s" if minutes < 10 else f"{minutes} min"
    return f"{seconds / 3600:.1f} h"


def merge_estimate(
    frame_size: tuple[int, int], frames: int, scale: int, device: str, *, with_torch: bool
) -> Estimate:
    """A merge of ``frames`` frames of ``frame_size`` ``(height, width)`` onto a ``scale``
    times finer grid. Seconds only on the CPU (measured there); ``with_torch``: the process
    loads torch (the finer grids, CUDA, ``run``)."""
    h, w = frame_size[0] * scale, frame_size[1] * scale
    key, process = (1 if scale == 1 else "fine"), ("torch" if with_torch else "merge")
    frame_px = frame_size[0] * frame_size[1] * frames  # summed over the frames
    seconds = None
    if device == "cpu":
        seconds = MERGE_SECONDS_PER_MP_FRAME[key] * h * w / 1e6 * frames + START_SECONDS[process]
        seconds += (IO_SECONDS_PER_MP["read"] * frame_px + IO_SECONDS_PER_MP["write"] * h * w) / 1e6
    peak = BASE_BYTES[process] + MERGE_BYTES_PER_PX[key] * h * w
    if scale > 1:  # the fine grid is built in bands from the frames it keeps
        peak += MERGE_BYTES_PER_PX["fine_frames"] * frame_px
    return Estimate(w, h, seconds, peak)


def bayer_estimate(
    merging: Estimate, frame_size: tuple[int, int], frames: int, scale: int
) -> Estimate:
    """``merging`` (:func:`merge_estimate` of the same burst) followed by the Bayer-domain
    splat of ``merge --raw-path bayer`` (:mod:`burstsr.burst.bayer`)."""
    from burstsr.burst.config import BAYER_SIGMA

    taps = (2 * max(1, math.ceil(2 * BAYER_SIGMA * scale)) + 1) ** 2
    seconds = merging.seconds
    if seconds is not None:
        mp_frames = frame_size[0] * frame_size[1] * frames / 1e6
        rate = BAYER_SECONDS_PER_MP_FRAME_TAP[min(scale, 2)]
        seconds += rate * taps * mp_frames
    peak = merging.peak_bytes + BAYER_BYTES_PER_PX * merging.width * merging.height
    return Estimate(merging.width, merging.height, seconds, peak)


def enhance_estimate(
    generator: Generator,
    size: tuple[int, int],
    *,
    tile: int | None = None,
    tile_pad: int | None = None,
    ensemble: bool = False,
    rate: float | None = None,
    streamed: bool = False,
) -> Estimate:
    """The refiner on an image of ``size`` ``(height, width)``; with ``rate`` (seconds per
    input pixel: :func:`seconds_per_input_pixel`) the time too, scaled to the pixels its tiles
    run on (:func:`tile_work`). ``streamed``: the output is written as its rows are made (a PNG
    without a resize: :func:`burstsr.io.png_rows.output_file`), so it is not held whole. The
    time is that of the deep model on every tile: detail routing (``--route``) can only make
    it shorter."""
    from burstsr.refiner.enhance import tile_plan

    s = generator.config.scale
    h, w = size
    out_px, in_px = h * w * s * s, h * w
    tile, blend, pad = tile_plan(generator, h, w, tile, tile_pad)
    tile_h, tile_w = min(h, tile + 2 * pad), min(w, tile + 2 * pad)
    cost, config = ENHANCE_BYTES_PER_PX, generator.config
    peak = BASE_BYTES["torch"] + (0 if streamed else cost["out"] * out_px) + cost["in"] * in_px
    working = tile_h * tile_w / config.unshuffle**2
    # a --strength dial runs its two networks one after the other: the wider one's activations
    channels = max(g.config.channels for g in getattr(generator, "networks", (generator,)))
    peak += working * channels * 4 * TILE_ACTIVATIONS
    seconds = None
    if rate is not None:
        worked = tile_work(h, w, tile, blend, pad)
        seconds = worked * rate * (8 if ensemble else 1) + START_SECONDS["torch"]
        seconds += (IO_SECONDS_PER_MP["read"] * in_px + IO_SECONDS_PER_MP["write"] * out_px) / 1e6
    return Estimate(w * s, h * s, seconds, peak)


def back_projection_estimate(
    estimate: Estimate, frames: int, *, scale: int = 4, streamed: bool = False
) -> Estimate:
    """``estimate`` (``run``'s; ``streamed``: made for an output written row by row) followed by
    back-projection of that output onto ``frames`` frames ``scale`` times smaller
    (:mod:`burstsr.refiner.backproject`): its iterations' time over its bands, and what it holds
    beside the output (held whole): the back-projected copy, and one band's planes at a time."""
    from burstsr.refiner.backproject import (
        BACK_PROJECTED_BYTES,
        BACK_PROJECTION_BYTES,
        ITERATIONS,
        band_rows_of,
    )

    px = estimate.width * estimate.height
    bands = band_rows_of(estimate.height, scale)
    worked = sum(y1 - y0 for _, _, y0, y1 in bands) * estimate.width
    at_once = max(y1 - y0 for _, _, y0, y1 in bands) * estimate.width
    seconds = estimate.seconds
    if seconds is not None:
        seconds += BACK_PROJECTION_SECONDS_PER_MP_FRAME * worked / 1e6 * frames * ITERATIONS
    held = ENHANCE_BYTES_PER_PX["out"] * px if streamed else 0  # the output, now held whole
    peak = estimate.peak_bytes + held + BACK_PROJECTED_BYTES * px + BACK_PROJECTION_BYTES * at_once
    return Estimate(estimate.width, estimate.height, seconds, peak)


def tile_work(h: int, w: int, tile: int, blend: int, pad: int) -> int:
    """The input pixels the refiner runs on for an ``h`` x ``w`` image in tiles of ``tile``,
    each grown by its cross-fade zone ``blend`` and ``pad`` pixels of context (clipped to the
    image, as enhance clips them; edge tiles are as narrow as what is left)."""

    def extent(n: int) -> int:
        reach = blend + pad
        return sum(min(a + tile + reach, n) - max(a - reach, 0) for a in range(0, n, tile))

    return extent(h) * extent(w)


def outscaled(estimate: Estimate, size: tuple[int, int] | None, any_scale: bool) -> Estimate:
    """``estimate`` (of a model's own output) for a final image of ``size`` ``(height,
    width)`` (``--outscale``/``--width``; None: the model's own size): an any-scale model renders
    that size directly, at a cost that grows with its pixels (its decoder's work is per output
    pixel); any other model's output is resized, which adds a float copy of the final image."""
    if size is None:
        return estimate
    h, w = size
    ratio = h * w / (estimate.width * estimate.height)
    seconds = estimate.seconds
    if any_scale and seconds is not None:
        seconds *= ratio
    peak = estimate.peak_bytes + max(0.0, (ratio - 1) if any_scale else 1.0) * h * w * 12
    return Estimate(w, h, seconds, peak)


def seconds_per_input_pixel(generator: Generator, *, half: bool = False) -> float:
    """Time the generator as its tiles run it
    (:func:`burstsr.refiner.enhance.inference_network`) on a patch of 64 x 64 of its working
    pixels (after folding) on its device (a fraction of a second on a CPU), in half precision
    with ``half`` (as ``--half`` runs it): seconds per input pixel."""
    import torch

    from burstsr.device import inference_precision, layout_for_half
    from burstsr.refiner.enhance import inference_network

    generator.eval()
    u = generator.config.unshuffle
    side = 64 * u
    device = next(generator.parameters()).device
    layout_for_half(generator, device, half)  # as enhance_image runs it
    network = inference_network(generator)  # what its tiles run
    channels = generator.config.in_channels
    patch = torch.rand(1, channels, side, side, device=device)
    with torch.inference_mode(), inference_precision(device, half):
        network(patch)  # warm-up: allocations, kernel selection
        _sync(device)
        start = time.perf_counter()
        network(patch)
        _sync(device)
    return (time.perf_counter() - start) / (side * side)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def check_output_size(estimate: Estimate, max_mp: float, hints: str) -> None:
    """Refuse, before any work, an output above ``max_mp`` megapixels (0: no limit).

    Raises:
        InputError: naming the size, the estimate, the options that help (``hints``) and how
            to lift the limit.
    """
    if max_mp and estimate.megapixels > max_mp:
        raise InputError(
            f"the output would be {estimate.describe()}, above --max-output-mp {max_mp:g}; "
            f"{hints}, or raise --max-output-mp (0: no limit)"
        )


def warn_if_short_of_memory(estimate: Estimate, log) -> None:
    """A warning on ``log`` when the estimated peak is above the memory available now."""
    free = available_memory()
    if free is not None and estimate.peak_bytes > free:
        log.warning(
            "this may not fit in memory: about %.1f GB needed, %.1f GB available now",
            estimate.peak_bytes / 1e9,
            free / 1e9,
        )


def available_memory() -> float | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``; else None)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        return None
    return None
