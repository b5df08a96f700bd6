"""Default output names, chosen so that the two kinds of merge and their restorations never
share a name: ``result.png`` (a merge on the frames' grid), ``result_grid4.png`` (a merge on
the x4 grid, already 4 times a frame's size), ``NAME_x4.png`` (4 times the frames' size)."""

from __future__ import annotations

import re
from pathlib import Path

_GRID_SUFFIX = re.compile(r"_grid\d+$")


def merge_name(grid: int) -> Path:
    """The default file of a merge on a ``grid`` times finer grid than the frames'."""
    return Path("result.png" if grid == 1 else f"result_grid{grid}.png")


def enhanced_name(source: Path, scale: int | str) -> str:
    """The default file name of ``source`` restored to ``scale`` times its *frames'* size:
    ``result_grid4.png`` -> ``result_x4.png``, ``photo.jpg`` -> ``photo_x4.png`` (a string
    ``scale`` is used as the suffix itself: ``"_1200px"``)."""
    suffix = scale if isinstance(scale, str) else f"_x{scale}"
    return f"{_GRID_SUFFIX.sub('', source.stem)}{suffix}.png"
