"""Training pairs: ``PAIRS_DIR/<scene>/result.png`` (the merge) + ``HR.png`` (the truth).

``find_pairs`` checks a pairs folder and infers the scale from the image sizes; ``PairDataset``
holds the pairs in memory and draws aligned random crops (with flips and 90-degree turns) from
a ``torch.Generator``, so a run is reproducible from its seed and resumable from its state.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from burstsr.errors import InputError
from burstsr.io import image_size, read_image
from burstsr.io.confidence import confidence_channel, read_confidence
from burstsr.refiner.networks import SCALES

MERGED_NAME, HR_NAME = "result.png", "HR.png"
CONFIDENCE_NAME = "confidence.png"  # synth writes the fine-grid merge's confidence map here


@dataclass(frozen=True)
class Pair:
    scene: str
    merged: Path
    hr: Path


@dataclass(frozen=True)
class PairSet:
    """The pairs of a folder, in scene order, and their common scale (HR size / merged size)."""

    pairs: list[Pair]
    scale: int


def find_pairs(folder: str | os.PathLike) -> PairSet:
    """Find the ``<scene>/{result.png, HR.png}`` pairs under ``folder`` and their scale.

    Raises:
        InputError: no such folder, no scenes, a scene missing a file, an HR image that is not an
            integer multiple (1, 2, 3, 4 or 8) of its merge, or scenes of different scales.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such pairs folder")
    scenes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not scenes:
        raise InputError(
            f"{folder}: no scenes; expected <scene>/{MERGED_NAME} + <scene>/{HR_NAME}"
            f" (burstsr synth makes them)"
        )
    pairs, scale, first = [], None, None
    for scene in scenes:
        merged, hr = scene / MERGED_NAME, scene / HR_NAME
        for needed in (merged, hr):
            if not needed.is_file():
                raise InputError(f"{scene.name}: missing {needed.name} in {scene}")
        (mh, mw), (hh, hw) = image_size(merged), image_size(hr)
        if hh % mh or hw % mw or hh // mh != hw // mw or hh // mh not in SCALES:
            raise InputError(
                f"{scene.name}: HR.png {hw}x{hh} is not an integer multiple "
                f"(1, 2, 3, 4 or 8) of result.png {mw}x{mh}"
            )
        s = hh // mh
        if scale is None:
            scale, first = s, scene.name
        elif s != scale:
            raise InputError(
                f"{scene.name}: scale x{s} differs from x{scale} of {first}; "
                f"all pairs must have one scale"
            )
        pairs.append(Pair(scene.name, merged, hr))
    return PairSet(pairs, scale)


def pairs_merge_kernel(pairs: list[Pair]) -> str:
    """The finer-grid merge kernel the pairs' merges were made with, from their ``meta.json``
    (``burstsr synth`` writes it); ``gaussian`` for pairs that do not say (made before the
    adaptive kernel existed, or by hand).

    Raises:
        InputError: the scenes were merged with different kernels.
    """
    kernels = {}
    for pair in pairs:
        meta = pair.merged.parent / "meta.json"
        kernel = "gaussian"
        if meta.is_file():
            try:
                kernel = json.loads(meta.read_text()).get("merge_kernel", "gaussian")
            except (OSError, ValueError) as exc:
                raise InputError(f"{meta}: unreadable ({exc})") from None
        kernels.setdefault(kernel, pair.scene)
    if len(kernels) > 1:
        named = ", ".join(f"{k} ({scene})" for k, scene in kernels.items())
        raise InputError(f"pairs merged with different --kernel: {named}; make them alike")
    return next(iter(kernels), "gaussian")


def split_pairs(pairs: list[Pair], fraction: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """A reproducible (train, validation) split of scenes; at least one of each when possible."""
    if not 0 <= fraction < 1:
        raise InputError(f"--val-fraction {fraction}: expected a value in [0, 1)")
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = min(len(pairs) - 1, max(1, round(fraction * len(pairs)))) if fraction > 0 else 0
    val = sorted(order[:n_val])
    return [p for i, p in enumerate(pairs) if i not in val], [pairs[i] for i in val]


def _tensor(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)


class PairDataset:
    """All pairs in memory as ``float32 (3, H, W)`` tensors; random aligned crops on demand.

    Args:
        pairs: the pairs to hold.
        scale: HR size / merged size.
        patch: HR crop size (a multiple of ``scale``); the merged crop is ``patch // scale``.
        augment: random flips and 90-degree turns.
        align: merged crops start and end on multiples of this (a model that folds its input
            by N sees whole N x N blocks, as in the whole image).
        confidence: the merged tensors get a 4th channel, each scene's ``confidence.png``
            (written by synth, read as :func:`~burstsr.io.confidence.confidence_channel`).
    """

    def __init__(
        self,
        pairs: list[Pair],
        scale: int,
        patch: int,
        *,
        augment: bool = True,
        align: int = 1,
        confidence: bool = False,
    ):
        if patch % (scale * align):
            raise InputError(f"--patch {patch}: must be a multiple of {scale * align}")
        self.scale, self.patch, self.augment, self.align = scale, patch, augment, align
        self.pairs = pairs
        self.merged = [_tensor(read_image(p.merged).pixels) for p in pairs]
        if confidence:
            for i, p in enumerate(pairs):
                path = p.merged.parent / CONFIDENCE_NAME
                if not path.is_file():
                    raise InputError(
                        f"{p.scene}: no {CONFIDENCE_NAME} for --confidence; make the pairs with "
                        f"burstsr synth --merge-scale 2 or 4 (adaptive kernel)"
                    )
                channel = confidence_channel(read_confidence(path))
                if channel.shape[:2] != self.merged[i].shape[1:]:
                    raise InputError(f"{path}: size differs from {MERGED_NAME}")
                self.merged[i] = torch.cat([self.merged[i], _tensor(channel)])
        self.hr = [_tensor(read_image(p.hr).pixels) for p in pairs]
        for p, m, h in zip(pairs, self.merged, self.hr, strict=True):
            if h.shape[1] < patch or h.shape[2] < patch:
                raise InputError(
                    f"--patch {patch}: larger than {p.scene}'s HR image "
                    f"({h.shape[2]}x{h.shape[1]}); use a smaller --patch"
                )
            if h.shape[1] != m.shape[1] * scale or h.shape[2] != m.shape[2] * scale:
                raise InputError(f"{p.scene}: HR.png is not x{scale} of result.png")

    def __len__(self) -> int:
        return len(self.pairs)

    def batch(self, size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``size`` random aligned crops: merged ``(size, 3, p/s, p/s)``, HR ``(size, 3, p, p)``."""
        s, lp, a = self.scale, self.patch // self.scale, self.align
        lrs, hrs = [], []
        for _ in range(size):
            i = int(torch.randint(len(self.pairs), (1,), generator=generator))
            m, h = self.merged[i], self.hr[i]
            y = a * int(torch.randint((m.shape[1] - lp) // a + 1, (1,), generator=generator))
            x = a * int(torch.randint((m.shape[2] - lp) // a + 1, (1,), generator=generator))
            lr = m[:, y : y + lp, x : x + lp]
            hr = h[:, y * s : (y + lp) * s, x * s : (x + lp) * s]
            if self.augment:
                flip, turns = (
                    torch.randint(2, (1,), generator=generator),
                    torch.randint(4, (1,), generator=generator),
                )
                if flip:
                    lr, hr = lr.flip(-1), hr.flip(-1)
                lr, hr = lr.rot90(int(turns), (1, 2)), hr.rot90(int(turns), (1, 2))
            lrs.append(lr)
            hrs.append(hr)
        return torch.stack(lrs), torch.stack(hrs)
