"""How merges use memory: freed frame-sized blocks reused, numpy's huge pages off while they
run, each setting restored after the last overlapping merge."""

import ctypes.util
import resource
import sys

import numpy as np
import pytest

from burstsr import memory
from burstsr.burst import pipeline
from burstsr.burst.config import MergeConfig
from burstsr.burst.synth import simulate_burst

from conftest import texture, write_frames

GLIBC = sys.platform.startswith("linux") and "libc.so" in (ctypes.util.find_library("c") or "")


def test_no_huge_pages_turns_numpys_request_off_and_the_last_block_restores_it():
    switch = memory._hugepage_switch()
    if switch is None:
        pytest.skip("this numpy has no huge-page switch")
    before = switch(True)
    try:
        first, second = memory.no_huge_pages(), memory.no_huge_pages()
        first.__enter__()
        second.__enter__()
        assert switch(False) is False  # off inside (reading it means setting it)
        first.__exit__(None, None, None)  # one merge ends while the other runs
        assert switch(False) is False
        second.__exit__(None, None, None)
        assert switch(True) is True  # the setting from before the first block
    finally:
        switch(before)


def _fresh_page_faults(size: int) -> int:
    """Page faults taken by allocating, filling and freeing a block of ``size`` bytes."""
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = np.empty(size, np.uint8)
    block.fill(1)
    del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start


@pytest.mark.skipif(not GLIBC, reason="the kept blocks are glibc's")
def test_kept_blocks_are_reused_without_fresh_page_faults():
    size = 3 * memory.LARGE_BLOCK  # above any mmap threshold glibc sets itself
    pages = size // 4096
    with memory.no_huge_pages():  # 4 KB pages: one fault each when fresh
        _fresh_page_faults(size)
        assert _fresh_page_faults(size) > pages // 2  # unmapped when freed, mapped afresh
        with memory.keep_freed_blocks():
            _fresh_page_faults(size)  # kept when freed ...
            assert _fresh_page_faults(size) < pages // 20  # ... and reused
        assert _fresh_page_faults(size) > pages // 2  # handed back after the block


@pytest.mark.parametrize("scale, kept", [(1, True), (2, False)])
def test_merges_of_large_frames_on_the_frames_grid_keep_freed_blocks(
    tmp_path, monkeypatch, scale, kept
):
    write_frames(tmp_path / "b", simulate_burst(texture(48, 64), frames=3, scale=1).frames)
    entered = []
    real = memory.keep_freed_blocks

    def spy():
        entered.append(True)
        return real()

    monkeypatch.setattr(pipeline, "keep_freed_blocks", spy)
    monkeypatch.setattr(pipeline, "LARGE_BLOCK", 48 * 64 * 12 - 1)  # these frames are "large"
    result = pipeline.merge_burst(tmp_path / "b", config=MergeConfig(scale=scale))
    assert result.image.shape[:2] == (48 * scale, 64 * scale)
    assert entered == ([True] if kept else [])
    monkeypatch.setattr(pipeline, "LARGE_BLOCK", 48 * 64 * 12)  # now they are not
    pipeline.merge_burst(tmp_path / "b", config=MergeConfig(scale=scale))
    assert len(entered) == int(kept)
