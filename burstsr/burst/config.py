"""The options of a merge and the values each one takes.

No numerics and no torch here: the command line and the CPU merge import this module, and
``burstsr merge`` on the CPU never has to load torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from burstsr.burst.align import ALIGN_METHODS, MOTIONS, AlignOptions
from burstsr.errors import InputError

MERGE_METHODS = ("mean", "median", "sigma-clip", "robust")  # burst/merge.py MERGERS
KERNELS = ("adaptive", "gaussian")  # burst/superres.py ACCUMULATORS
INTERPOLATIONS = ("bicubic", "bilinear")  # burst/warp.py
SCALES = (1, 2, 3, 4)


# merge --raw-path bayer: the kernel width in sensor pixels (red and blue are sampled every
# other pixel of every other row, so narrower kernels leave holes between a few frames'
# samples, wider ones blur; chosen on BSD200 bursts, docs/benchmarks.md).
BAYER_SIGMA = 0.45


@dataclass(frozen=True)
class MergeConfig:
    """Options of ``burstsr merge``; the CLI takes its defaults from here."""

    align: str = "auto"  # auto | orb | ecc
    motion: str = "homography"  # translation | euclidean | affine | homography
    reference: str = "first"  # first | sharpest | a 0-based frame index
    merge: str = "robust"  # one of MERGE_METHODS
    interpolation: str = "bicubic"  # bicubic | bilinear
    min_score: float = 0.5
    max_align_pixels: int = 65_000  # ECC levels; larger frames are refined sparsely
    skip_bad: bool = False
    scale: int = 1  # > 1: merge onto a scale-times finer grid (burst.superres)
    kernel: str = "adaptive"  # the finer grid's kernels: adaptive | gaussian (burst.superres)

    def align_options(self) -> AlignOptions:
        return AlignOptions(
            method=self.align,
            motion=self.motion,
            min_score=self.min_score,
            max_align_pixels=self.max_align_pixels,
        )

    def check(self) -> None:
        """Raise :class:`InputError`, naming the option, for a value it does not take."""
        choices = {
            "align": ALIGN_METHODS,
            "motion": tuple(MOTIONS),
            "merge": MERGE_METHODS,
            "kernel": KERNELS,
            "interpolation": INTERPOLATIONS,
            "scale": SCALES,
        }
        for name, allowed in choices.items():
            value = getattr(self, name)
            if value not in allowed:
                expected = ", ".join(map(str, allowed))
                raise InputError(f"--{name} {value}: expected one of {expected}")
