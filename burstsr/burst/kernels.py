"""Adaptive merge kernels: how far, and in which direction, each sample reaches on the fine grid.

The fine-grid merge (:mod:`burstsr.burst.superres`) estimates every fine pixel by kernel
regression over the frame samples around it. A fixed narrow kernel lets each fine pixel take
whichever few samples landed near it: where the burst sampled unevenly (almost-still frames,
few frames, zoom) that paints the sampling pattern into the image. Here, as in Wronski et al.,
"Handheld Multi-Frame Super-Resolution" (SIGGRAPH 2019, section 5.1), the kernel follows the
local structure of the reference frame, read from its structure tensor:

- in flat or noise-dominated areas the kernel is wide and round (``denoise`` frame pixels):
  every fine pixel averages many samples, so uneven sampling cannot show;
- on edges and lines it is narrow across the edge (``detail``, shrunk further with the
  anisotropy) and long along it (``detail * stretch * anisotropy``): the detail the burst's
  sub-pixel diversity measured across the edge stays, and samples along the edge still average.

How "flat" an area is, is judged against the burst's own noise, so the same parameters serve
clean daylight frames and noisy night ones. The noise is estimated from the reference
(:func:`noise_sigma`) and from the aligned frames' differences from it
(:func:`difference_noise`), which also see noise that demosaicing and JPEG spread over a few
pixels. All functions are pure and work on any torch device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class KernelParams:
    """Kernel shapes, standard deviations in frame pixels (see the module's docstring)."""

    detail: float = 0.15  # across an edge
    stretch: float = 2.0  # along an edge: detail * stretch * anisotropy
    denoise: float = 0.5  # in flat areas, every direction; also the sparse-sampling fallback
    flat: tuple[float, float] = (1.0, 2.0)  # edge strength / noise: below -> flat, above -> edge
    integration: float = 1.0  # std of the structure tensor's window, frame pixels
    enough: float = 1.0  # kernel weight below which a fine pixel leans on the round kernels


# kernel_precision and difference_noise work on bands of rows of about this many pixels.
BAND_PIXELS = 2**19


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(N, C, H, W)`` with replicated borders."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def noise_sigma(luma: torch.Tensor, *, block: int = 8, quantile: float = 0.1) -> float:
    """Standard deviation of the noise in ``luma`` (``(H, W)``), from its flattest areas.

    Immerkær's high-pass ("Fast Noise Variance Estimation", 1996) responds to noise and to
    texture alike; its robust level (1.4826 x median |response| / 6) is taken in every
    ``block`` x ``block`` cell and the ``quantile`` of the cells is kept, so texture does not
    count as noise as long as a tenth of the image is smooth. Floored at 1e-3."""
    # The separable kernel [1 -2 1]^T [1 -2 1] as two second differences (a 3x3 conv2d of one
    # channel unfolds the image nine times on the CPU).
    if min(luma.shape) < 3:  # no 3x3 neighbourhood: nothing to measure
        return 1e-3
    across = luma[:, :-2] - 2 * luma[:, 1:-1] + luma[:, 2:]
    response = (across[:-2] - 2 * across[1:-1] + across[2:]).abs_()
    del across
    h, w = response.shape[0] // block * block, response.shape[1] // block * block
    if h == 0 or w == 0:
        return max(1.4826 * float(response.median()) / 6.0, 1e-3)
    levels = _cells(response[:h, :w], block).median(dim=1).values
    return max(1.4826 * float(torch.quantile(levels, quantile)) / 6.0, 1e-3)


def _cells(x: torch.Tensor, block: int) -> torch.Tensor:
    """``x`` ``(H, W)``, both multiples of ``block``, as its ``block x block`` cells: one row of
    ``block * block`` values per cell, cells in row-major order."""
    h, w = x.shape
    return (
        x.reshape(h // block, block, w // block, block).transpose(1, 2).reshape(-1, block * block)
    )


def difference_noise(
    reference: torch.Tensor,
    aligned: torch.Tensor,
    valid: torch.Tensor,
    *,
    block: int = 8,
    quantile: float = 0.25,
) -> float | None:
    """The noise of a burst, measured in the units the kernels compare edges with, from one
    frame aligned onto the reference: ``reference`` and ``aligned`` luma ``(H, W)``, ``valid``
    ``(H, W)`` where the aligned frame has samples.

    Where the two frames show the same scene, their difference holds only the two frames'
    noise: texture cancels, and so does a smooth change of brightness. Its central-difference
    gradient energy is taken in every ``block`` x ``block`` cell wholly inside ``valid``, and
    the ``quantile`` of the cells is kept (cells with motion or misregistered fine texture
    count high and are left out). Divided by two frames' worth, this is the noise's
    ``E[gx^2 + gy^2]`` at the scale of the structure tensor, so that :func:`kernel_precision`
    with ``noise`` set to its square root sees the noise as noise, even where the camera's
    processing (demosaicing, JPEG) has moved it from single pixels to clumps of a few, which
    :func:`noise_sigma` reads from the reference alone misses (real phone JPEGs: 0.41 levels
    against 1.5). For independent noise of std ``s`` it gives about ``s``, a little less
    where the alignment's interpolation smoothed the aligned frame's noise.

    Returns None where no cell is wholly valid. Large images are measured in bands of rows
    (the same cells, fewer temporaries)."""
    # Row and column 0 and the last ones have no central difference: cells start at 1.
    h = (reference.shape[0] - 2) // block * block
    w = (reference.shape[1] - 2) // block * block
    if h <= 0 or w <= 0:
        return None
    rows = max(block, BAND_PIXELS // max(w, 1) // block * block)
    levels = []
    for y0 in range(0, h, rows):
        y1 = min(y0 + rows, h)
        d = reference[y0 : y1 + 2, : w + 2] - aligned[y0 : y1 + 2, : w + 2]
        gx = d[1:-1, 2:] - d[1:-1, :-2]
        gy = d[2:, 1:-1] - d[:-2, 1:-1]
        del d
        energy = gx.square_().add_(gy.square_()).mul_(1 / 8)  # (gx/2)^2 + (gy/2)^2, halved
        del gx, gy
        inside = _cells(valid[y0 + 1 : y1 + 1, 1 : w + 1], block).all(dim=1)
        levels.append(_cells(energy, block).mean(dim=1)[inside])
    found = torch.cat(levels)
    if found.numel() == 0:
        return None
    return math.sqrt(float(torch.quantile(found, quantile)))


def structure_tensor(luma: torch.Tensor, *, integration: float = 1.0) -> torch.Tensor:
    """The structure tensor of ``luma`` (``(H, W)``): ``(3, H, W)`` holding ``Ixx, Ixy, Iyy``,
    central-difference gradients averaged over a Gaussian window of std ``integration``."""
    x = F.pad(luma[None, None], (1, 1, 1, 1), mode="replicate")
    gx = (x[..., 1:-1, 2:] - x[..., 1:-1, :-2]) / 2
    gy = (x[..., 2:, 1:-1] - x[..., :-2, 1:-1]) / 2
    products = torch.cat([gx * gx, gx * gy, gy * gy], dim=1)
    return _gaussian_blur(products, integration)[0]


def kernel_precision(
    luma: torch.Tensor, *, params: KernelParams = KernelParams(), noise: float | None = None
) -> torch.Tensor:
    """Per-pixel kernel shapes for the reference luma ``(H, W)``, as the inverse covariance
    ``(3, H, W)``: ``(Pxx, Pxy, Pyy)``, so that a sample at offset ``(dx, dy)`` (frame pixels)
    weighs ``exp(-(Pxx dx^2 + 2 Pxy dx dy + Pyy dy^2) / 2)``.

    ``noise``: the noise std of ``luma``; estimated with :func:`noise_sigma` when None.
    Large images are done in bands of rows (with the rows the structure tensor reaches as
    context; the same values as in one pass), so the temporaries stay small.
    """
    if noise is None:
        noise = noise_sigma(luma)
    h, w = luma.shape
    rows = max(1, BAND_PIXELS // max(w, 1))
    if h <= rows:
        return _precision(luma, params, noise)
    context = 1 + max(1, math.ceil(3 * params.integration))  # the gradient and the window
    out = torch.empty((3, h, w), dtype=luma.dtype, device=luma.device)
    for y0 in range(0, h, rows):
        y1 = min(y0 + rows, h)
        c0, c1 = max(y0 - context, 0), min(y1 + context, h)
        out[:, y0:y1] = _precision(luma[c0:c1], params, noise)[:, y0 - c0 : y1 - c0]
    return out


def _precision(luma: torch.Tensor, params: KernelParams, noise: float) -> torch.Tensor:
    """:func:`kernel_precision` of ``luma`` in one pass."""
    a, b, c = structure_tensor(luma, integration=params.integration)
    half_trace, half_diff = (a + c) / 2, (a - c) / 2
    root = torch.sqrt(half_diff**2 + b**2)
    l1, l2 = half_trace + root, (half_trace - root).clamp(min=0)
    anisotropy = 1 + torch.sqrt((l1 - l2) / (l1 + l2).clamp(min=1e-12))  # 1 (round) .. 2 (line)
    # A central difference of the noise alone has std noise / sqrt(2), and the window averages
    # its square to about noise^2 / 2: measure the edge strength in those units.
    strength = torch.sqrt(l1) / (noise / math.sqrt(2))
    lo, hi = params.flat
    flat = ((hi - strength) / (hi - lo)).clamp(0, 1)
    across = (1 - flat) * params.detail / anisotropy + flat * params.denoise
    along = (1 - flat) * params.detail * params.stretch * anisotropy + flat * params.denoise
    theta = 0.5 * torch.atan2(2 * b, a - c)  # direction of the gradient (across the edge)
    cos, sin = torch.cos(theta), torch.sin(theta)
    p_across, p_along = 1 / across**2, 1 / along**2
    return torch.stack(
        [
            cos**2 * p_across + sin**2 * p_along,
            cos * sin * (p_across - p_along),
            sin**2 * p_across + cos**2 * p_along,
        ]
    )
