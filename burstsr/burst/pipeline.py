"""``merge_burst``: frames on disk -> one image, in stages:

1. **check** every frame's header (readable, one size) before decoding any
   (:func:`~burstsr.burst.frames.check_headers`);
2. **reference**: pick and decode it (:mod:`burstsr.burst.reference`), prepare its alignment
   features;
3. **decode + align** the other frames, two ahead of the merge in background threads
   (:func:`~burstsr.burst.frames.aligned_frames`: an ``AlignedFrame`` each);
4. **warp + merge** (:func:`merge`): OpenCV on the CPU for ``mean`` and ``robust`` on the
   frames' grid (:mod:`burstsr.burst.merge_cpu`, no torch); torch on CUDA and for ``median`` /
   ``sigma-clip`` (:mod:`burstsr.burst.merge_torch`); the finer grids
   (:mod:`burstsr.burst.merge_fine`);
5. the **report**, built from what the stages returned.

With the streaming merges the memory holds the reference, two frames and the accumulator,
whatever the burst's length.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import threadpool_limits

from burstsr.burst.align import prepare_reference, to_gray
from burstsr.burst.camera import linear_to_srgb
from burstsr.burst.config import MergeConfig
from burstsr.burst.frames import AlignedFrame, aligned_frames, check_headers, read_frame
from burstsr.burst.merge_cpu import CPU_MERGES, CpuStack
from burstsr.burst.reference import pick_reference
from burstsr.burst.result import FrameReport, MergeResult
from burstsr.device import device_name
from burstsr.errors import AlignmentError, InputError, OutputError
from burstsr.io import Burst, Image, load_burst, make_folder, write_image
from burstsr.memory import LARGE_BLOCK, keep_freed_blocks, no_huge_pages
from burstsr.shared_setting import SharedSetting

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]  # (frames done, frames in all, name of the last one)
OnWarped = Callable[[int, np.ndarray, np.ndarray], None]  # (index, warped frame, its mask)

__all__ = ["MergeConfig", "Progress", "merge", "merge_burst"]

_MIN_SIDE = 8  # smaller frames cannot be aligned


def merge_burst(
    source: str | os.PathLike | Sequence[str | os.PathLike] | Burst,
    *,
    config: MergeConfig = MergeConfig(),
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
    save_aligned: str | os.PathLike | None = None,
) -> MergeResult:
    """Align every frame of a burst to its reference and merge them.

    Args:
        source: a folder of frames, a list of frame files, or a :class:`Burst`.
        config: alignment, reference and merge options.
        device: where warping and merging run: ``"cpu"``, ``"cuda[:N]"``, ``"auto"`` or a
            ``torch.device`` (alignment runs on the CPU with OpenCV).
        progress: called after each frame with (done, total, frame name).
        save_aligned: a folder to write every aligned frame into (created if missing).

    Raises:
        InputError: a bad option, unreadable frames (unless ``config.skip_bad``), frames of
            different sizes, a bad ``reference``, fewer than two usable frames.
        AlignmentError: no frame besides the reference could be aligned.
    """
    with one_blas_thread(), no_huge_pages():
        return _merge_burst(source, config, device, progress, save_aligned)


_one_blas_thread = SharedSetting(
    lambda: threadpool_limits(limits=1, user_api="blas"),
    lambda limiter: limiter.restore_original_limits(),
)


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """One BLAS thread, process-wide, while any merge runs; the caller's setting after the
    last. Alignment makes many small BLAS calls (dot products and 8x8 systems over 30 000 to
    75 000 points) while frames are decoded, aligned and merged in parallel threads; a
    multi-threaded BLAS wakes its own threads for each call and keeps them spinning after it,
    taking the cores the other stages need. Merges in several threads share one limit."""
    with _one_blas_thread():
        yield


def _merge_burst(
    source: str | os.PathLike | Sequence[str | os.PathLike] | Burst,
    config: MergeConfig,
    device: torch.device | str,
    progress: Progress | None,
    save_aligned: str | os.PathLike | None,
) -> MergeResult:
    """:func:`merge_burst`, inside its BLAS limit and without huge pages."""
    config.check()
    device = device_name(str(device))
    burst = source if isinstance(source, Burst) else load_burst(source)
    start = time.perf_counter()
    h, w = check_headers(burst, skip_bad=config.skip_bad)
    # The OpenCV merge of large frames allocates and frees arrays of one size, frame after frame.
    keep = merges_on_cpu_stack(config, device) and h * w * 3 * 4 > LARGE_BLOCK
    with keep_freed_blocks() if keep else contextlib.nullcontext():
        return _stages(burst, start, config, device, progress, save_aligned)


def _stages(
    burst: Burst,
    start: float,
    config: MergeConfig,
    device: str,
    progress: Progress | None,
    save_aligned: str | os.PathLike | None,
) -> MergeResult:
    """:func:`merge_burst` from the reference on, the headers checked."""
    saver = None if save_aligned is None else AlignedSaver(Path(save_aligned), burst)

    # The reference and its alignment features.
    load_seconds: dict[int, dict[str, float]] = {}

    def read(index: int) -> Image | None:
        frame = read_frame(burst, index, skip_bad=config.skip_bad)
        load_seconds[index] = frame.seconds
        return frame.image

    ref_index, ref = pick_reference(burst, config.reference, read)
    ref_path = burst.paths[ref_index]
    if min(ref.shape) < _MIN_SIDE:
        raise InputError(
            f"{ref_path}: {ref.shape[1]}x{ref.shape[0]} frames are too small to align "
            f"(at least {_MIN_SIDE}x{_MIN_SIDE})"
        )
    options = config.align_options()
    t0 = time.perf_counter()
    prepared = prepare_reference(to_gray(ref.pixels, linear=ref.linear), options=options)
    reference = AlignedFrame(ref_index, None, seconds=load_seconds[ref_index])
    reference.seconds["align"] = time.perf_counter() - t0
    if saver is not None:
        saver.start(ref)
        saver.save(ref_index, ref.pixels)

    # Decode + align the others as the merger takes them; warp + merge.
    others = [i for i in range(len(burst)) if i != ref_index]
    # The OpenCV merger converts integer frames to float itself, into one reused buffer.
    stream = aligned_frames(
        burst,
        others,
        ref,
        prepared,
        options,
        skip_bad=config.skip_bad,
        keep_integers=merges_on_cpu_stack(config, device),
    )
    feed = Feed(stream, burst, progress)
    if progress is not None:
        progress(1, len(burst), ref_path.name)
    linear, gray, deep = ref.linear, ref.gray, ref.bit_depth > 8 or ref.linear
    pixels, ref = ref.pixels, None  # from here on the reference's pixels live in the merger
    image, confidence = merge(
        pixels, feed, config=config, device=device, on_warped=saver and saver.save_warped
    )
    if 1 + sum(f.readable for f in feed.frames) < 2:
        raise InputError(
            f"{ref_path.parent}: fewer than 2 usable frames (only 1 of {len(burst)} could be read)"
        )
    if not any(f.ok for f in feed.frames):
        raise AlignmentError(
            f"none of the other {sum(f.readable for f in feed.frames)} frames could be "
            f"aligned to {ref_path.name}; try another --align (ecc, orb), a simpler --motion, "
            f"or a lower --min-score"
        )
    if linear:
        image = linear_to_srgb(image)

    # The report, from what the stages returned.
    reports = [frame_report(burst.paths[f.index], f, feed.merge_seconds) for f in feed.frames]
    reports.append(frame_report(ref_path, reference, {}))
    reports.sort(key=lambda r: r.index)
    seconds = {
        # Summed over frames: decoding and aligning overlap the merge, so these can add up to
        # more than the total.
        stage: round(sum(r.seconds.get(stage, 0.0) for r in reports), 4)
        for stage in ("load", "align", "warp_merge")
    }
    seconds["total"] = round(time.perf_counter() - start, 4)
    return MergeResult(
        image=np.ascontiguousarray(image, dtype=np.float32),
        # Gray only if every merged frame is, deep if any merged frame is.
        bit_depth=16 if deep or feed.deep else 8,
        gray=gray and feed.gray,
        reference=str(ref_path),
        frames=reports,
        seconds=seconds,
        confidence=confidence,
        grid=config.scale,
    )


def merge(
    reference: np.ndarray,
    frames: Iterable[tuple[int, np.ndarray, np.ndarray]],
    *,
    config: MergeConfig,
    device: str,
    on_warped: OnWarped | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Warp ``frames`` (index, pixels, transform) onto ``reference``'s grid (``config.scale``
    times finer) and merge them with the merger that fits ``config`` and ``device``. Returns
    the image ``float32 (H, W, C)`` and, for the adaptive finer grids, the confidence map.
    ``reference`` is handed over: the CPU merge on the frames' grid accumulates into it."""
    if config.scale > 1:
        from burstsr.burst.merge_fine import merge_fine

        return merge_fine(reference, frames, config=config, device=device, on_warped=on_warped)
    if merges_on_cpu_stack(config, device):
        stack = CpuStack(
            reference, method=config.merge, interpolation=config.interpolation, in_place=True
        )
        del reference
        for index, pixels, transform in frames:
            save = None if on_warped is None else (lambda w, m, i=index: on_warped(i, w, m))
            stack.add(pixels, transform, on_warped=save)
        return stack.result(), None
    from burstsr.burst.merge_torch import merge_torch

    return merge_torch(reference, frames, config=config, device=device, on_warped=on_warped)


def merges_on_cpu_stack(config: MergeConfig, device: str) -> bool:
    """Whether :func:`merge` takes the OpenCV path (:class:`CpuStack`): the streaming merges on
    the frames' own grid, on the CPU."""
    return config.scale == 1 and device == "cpu" and config.merge in CPU_MERGES


class Feed:
    """The aligned frames as the merger takes them, ``(index, pixels, transform)``, and what
    became of each: :attr:`frames` (in order), the seconds the merger spent on each, and
    whether every merged frame was gray and any of them deep."""

    def __init__(
        self, stream: Iterator[AlignedFrame], burst: Burst, progress: Progress | None
    ) -> None:
        self.stream, self.burst, self.progress = stream, burst, progress
        self.frames: list[AlignedFrame] = []
        self.merge_seconds: dict[int, float] = {}
        self.gray, self.deep = True, False

    def __iter__(self) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        for done, frame in enumerate(self.stream, start=2):
            self.frames.append(frame)
            path = self.burst.paths[frame.index]
            if frame.found is not None and not frame.ok:
                log.warning("%s: left out, not aligned: %s", path.name, frame.found.message)
            if frame.ok:
                self.gray = self.gray and frame.image.gray
                self.deep = self.deep or frame.image.bit_depth > 8
                t0 = time.perf_counter()
                yield frame.index, frame.image.pixels, frame.found.transform
                self.merge_seconds[frame.index] = time.perf_counter() - t0
            frame.image = None  # merged: release the decoded pixels
            if self.progress is not None:
                self.progress(done, len(self.burst), path.name)


def frame_report(path: Path, frame: AlignedFrame, merge_seconds: dict[int, float]) -> FrameReport:
    """The report of one frame: the reference (no alignment), an unreadable one, or what
    alignment found."""
    seconds = dict(frame.seconds)
    if frame.index in merge_seconds:
        seconds["warp_merge"] = merge_seconds[frame.index]
    report = FrameReport(str(path), frame.index, used=frame.ok, message=frame.error)
    report.seconds = {k: round(v, 4) for k, v in seconds.items()}
    found = frame.found
    if found is None and frame.readable:  # the reference
        report.used, report.reference = True, True
        report.transform, report.score = np.eye(3).tolist(), 1.0
    elif found is not None:
        report.score, report.method = round(found.score, 5), found.method
        report.inlier_ratio, report.overlap = found.inlier_ratio, round(found.overlap, 4)
        report.transform, report.message = found.transform.tolist(), found.message
    return report


class AlignedSaver:
    """``--save-aligned``: every aligned frame written as a PNG into a folder (uncovered pixels
    black), display-encoded, in the reference's depth and colour."""

    def __init__(self, folder: Path, burst: Burst) -> None:
        _check_aligned_dir(folder, burst)
        self.folder, self.burst = folder, burst

    def start(self, reference: Image) -> None:
        """Create the folder and take the format from the reference."""
        make_folder(self.folder, what="--save-aligned folder")
        self.linear, self.gray = reference.linear, reference.gray
        self.depth = 16 if reference.bit_depth > 8 or reference.linear else 8

    def save(self, index: int, pixels: np.ndarray) -> None:
        if self.linear:
            pixels = linear_to_srgb(pixels)
        target = self.folder / _aligned_name(index, self.burst.paths[index])
        write_image(target, pixels[:, :, 0] if self.gray else pixels, bit_depth=self.depth)

    def save_warped(self, index: int, warped: np.ndarray, mask: np.ndarray) -> None:
        self.save(index, warped * mask[:, :, None])


def _aligned_name(index: int, path: Path) -> str:
    return f"{index:03d}_{path.stem}.png"


def _check_aligned_dir(folder: Path, burst: Burst) -> None:
    """The aligned frames may not overwrite an input."""
    inputs = {p.resolve() for p in burst.paths}
    for index, path in enumerate(burst.paths):
        if (folder / _aligned_name(index, path)).resolve() in inputs:
            raise OutputError(
                f"--save-aligned {folder}: would overwrite the input {path.name}; "
                f"choose another folder"
            )
