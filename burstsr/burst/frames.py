"""The first stages of a merge: check every frame's header, then decode and align the frames,
a few ahead of the merge in background threads, one :class:`AlignedFrame` each."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from burstsr.burst.align import (
    Alignment,
    AlignOptions,
    Reference,
    build_pyramid,
    estimate_transform,
    to_gray,
)
from burstsr.errors import InputError
from burstsr.io import Burst, Image, image_size

log = logging.getLogger(__name__)

AHEAD = 2  # frames decoded and aligned ahead of the merge, each in its own thread


@dataclass
class AlignedFrame:
    """One frame after decoding (and, for all but the reference, alignment).

    Attributes:
        index: its position in the burst.
        image: the decoded frame; None when it could not be read (``error`` says why; only
            with ``--skip-bad``) or once the merge has taken it.
        found: what alignment found (None for the reference and unreadable frames).
        error: why it could not be read.
        seconds: time spent loading and aligning it.
    """

    index: int
    image: Image | None
    found: Alignment | None = None
    error: str = ""
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def readable(self) -> bool:
        return not self.error

    @property
    def ok(self) -> bool:
        """Aligned well enough to be merged."""
        return self.found is not None and self.found.ok


def check_headers(burst: Burst, *, skip_bad: bool) -> tuple[int, int]:
    """Before any decoding: every frame's header must be readable (unless ``skip_bad``) and
    give the same size, and at least two frames must be left. Returns that ``(height, width)``
    (of the whole frames, before any crop).

    Raises:
        InputError: naming the first frame that fails.
    """
    first: tuple[Path, tuple[int, int]] | None = None
    readable = 0
    for path in burst.paths:
        try:
            size = image_size(path)
        except InputError:
            if not skip_bad:
                raise
            continue  # reported when the merge reaches it
        readable += 1
        if first is None:
            first = (path, size)
        elif size != first[1]:
            (h, w), (fh, fw) = size, first[1]
            raise InputError(
                f"{path}: size {w}x{h} differs from {first[0].name} ({fw}x{fh}); "
                f"every frame must have one size"
            )
    if readable < 2:
        raise InputError(
            f"{burst.paths[0].parent}: fewer than 2 usable frames "
            f"(only {readable} of {len(burst)} could be read)"
        )
    return first[1]


def read_frame(
    burst: Burst, index: int, *, skip_bad: bool, keep_integers: bool = False
) -> AlignedFrame:
    """Decode frame ``index``; with ``skip_bad`` an unreadable frame comes back with its error
    (and a warning) instead of raising. ``keep_integers``: 8- and 16-bit frames keep their
    integer samples (see :func:`burstsr.io.read_image`)."""
    t0 = time.perf_counter()
    try:
        image, error = burst.read(index, keep_integers=keep_integers), ""
    except InputError as exc:
        if not skip_bad:
            raise
        log.warning("%s; skipped (--skip-bad)", exc)
        image, error = None, str(exc)
    return AlignedFrame(index, image, error=error, seconds={"load": time.perf_counter() - t0})


def aligned_frames(
    burst: Burst,
    indices: Sequence[int],
    reference: Image,
    prepared: Reference,
    options: AlignOptions,
    *,
    skip_bad: bool,
    keep_integers: bool = False,
) -> Iterator[AlignedFrame]:
    """Decode and align the frames ``indices`` to ``reference`` (``prepared``: its features),
    in order, :data:`AHEAD` of them in background threads while the caller merges.
    ``keep_integers``: 8- and 16-bit frames come as decoded, uint8 / uint16 (a quarter or half
    of float32's bytes: on 12 MP frames, allocating a fresh float copy of each costs more than
    converting it into one reused buffer where it is warped).

    Raises:
        InputError: a frame is unreadable (unless ``skip_bad``), of another size than the
            reference, or RAW where the reference is not (or the reverse).
    """

    def prepare(index: int) -> AlignedFrame:  # in a worker thread: touches only its frame
        frame = read_frame(burst, index, skip_bad=skip_bad, keep_integers=keep_integers)
        if frame.image is None:
            return frame
        check_compatible(frame.image, reference, burst.paths[index])
        t0 = time.perf_counter()
        pyramid = build_pyramid(to_gray(frame.image.pixels, linear=frame.image.linear))
        frame.found = estimate_transform(prepared, pyramid, options=options)
        frame.seconds["align"] = time.perf_counter() - t0
        return frame

    with ThreadPoolExecutor(max_workers=AHEAD) as pool:
        upcoming = deque(pool.submit(prepare, i) for i in indices[:AHEAD])
        for position in range(len(indices)):
            frame = upcoming.popleft().result()
            if position + AHEAD < len(indices):
                upcoming.append(pool.submit(prepare, indices[position + AHEAD]))
            yield frame


def check_compatible(image: Image, reference: Image, path: Path) -> None:
    """A frame must have the reference's size, and be RAW exactly when the reference is."""
    if image.shape != reference.shape:
        (h, w), (rh, rw) = image.shape, reference.shape
        raise InputError(
            f"{path}: size {w}x{h} differs from the reference ({rw}x{rh}); "
            f"every frame must have one size"
        )
    if image.linear != reference.linear:
        raise InputError(f"{path}: RAW and non-RAW frames cannot be merged together")
