"""Handing freed memory back to the system between the steps of long, tiled work, and keeping
it for reuse while a merge runs.

glibc's allocator serves allocations under its (self-raising, up to 32 MB) mmap threshold from
its heaps and keeps what is freed there. Tiled inference allocates and frees tens of megabytes
a tile (patches, activations, outputs) in shifting sizes, so the heap fragments and the
process's resident memory climbs tile after tile although little of it is in use: on a 24 MP
``enhance`` it reached 1.3 GB, 1.1 GB with a trim after every tile, at the same speed (forcing
large blocks to be mapped and unmapped instead cost 35-60 % more time in page faults).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import importlib
import sys
from collections.abc import Callable, Iterator

from burstsr.shared_setting import SharedSetting


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


@functools.cache
def _libc_function(name: str):
    """The C library's function ``name`` (glibc's ``malloc_trim``, ``mallopt``), or None."""
    libc = _libc()
    return None if libc is None else getattr(libc, name, None)


def release_free_memory() -> bool:
    """Return the allocator's free memory to the system (glibc's ``malloc_trim``); False where
    there is no such call (other C libraries and systems manage this themselves)."""
    trim = _libc_function("malloc_trim")  # glibc, not musl
    if trim is None:
        return False
    trim(0)
    return True


@functools.lru_cache(maxsize=1)
def _hugepage_switch() -> Callable[[bool], bool] | None:
    """numpy's switch for asking the kernel for huge pages on large arrays (what the
    documented ``NUMPY_MADVISE_HUGEPAGE`` sets at import); it returns the previous setting."""
    for name in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        return getattr(module, "_set_madvise_hugepage", None)
    return None


def _hugepages_off() -> bool | None:
    switch = _hugepage_switch()
    return None if switch is None else switch(False)


def _hugepages_back(before: object) -> None:
    if before is not None:
        _hugepage_switch()(bool(before))


_huge_pages_off = SharedSetting(_hugepages_off, _hugepages_back)


@contextlib.contextmanager
def no_huge_pages() -> Iterator[None]:
    """While the block runs numpy does not ask the kernel for huge pages for its large
    arrays. Where the kernel serves them on request (``madvise`` mode, a common default), a
    fault may have to compact memory first: in a merge of 8 frames of 12 MP that system time
    swung from 1.8 to 3.4 s between runs, and stayed at 1.1-1.2 s without huge pages (the merge
    took 3.4-3.6 s instead of 4.0-4.6 s; on 1 MP frames the two are level). Blocks in several
    threads share the setting; the last to end restores it."""
    with _huge_pages_off():
        yield


# glibc's mallopt parameters
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_KEEP_TRIM, _KEEP_MMAP = 1 << 30, 1 << 29  # while freed blocks are kept
# Afterwards: where glibc's self-raising thresholds stand once blocks of 32 MB have been freed
# (setting them fixes them there).
_AFTER_TRIM, _AFTER_MMAP = 64 << 20, 32 << 20
LARGE_BLOCK = 32 << 20  # glibc maps blocks this large afresh every time, whatever it has freed


def _keep_freed() -> None:
    mallopt = _libc_function("mallopt")
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, _KEEP_MMAP)
        mallopt(_M_TRIM_THRESHOLD, _KEEP_TRIM)


def _hand_back(_: object) -> None:
    mallopt = _libc_function("mallopt")
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, _AFTER_MMAP)
        mallopt(_M_TRIM_THRESHOLD, _AFTER_TRIM)
        release_free_memory()


_freed_kept = SharedSetting(_keep_freed, _hand_back)


@contextlib.contextmanager
def keep_freed_blocks() -> Iterator[None]:
    """While the block runs, glibc keeps freed blocks of any size for reuse instead of
    unmapping those over :data:`LARGE_BLOCK` and mapping fresh ones, page by page, for the
    next; at the end the free memory is handed back. A merge decodes, converts and aligns
    every 12 MP frame in fresh arrays of 36-48 MB: about 700 000 page faults for 8 frames,
    1 s of system time. Kept, the 12 MP merge took 3.2-3.3 s instead of 3.4-3.6 s, at no
    more peak memory. Not for work whose large blocks change size (the finer-grid merge held
    80 MB more at its peak, no faster). Shared by blocks in several threads as
    :func:`no_huge_pages`. Does nothing without glibc."""
    with _freed_kept():
        yield
