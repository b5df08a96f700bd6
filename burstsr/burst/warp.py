"""Resampling a frame onto the reference grid, in torch, on any device.

``warp_frame(frame, transform)`` returns the frame as seen from the reference: output pixel
``(x, y)`` is sampled from the frame at ``transform @ (x, y, 1)``. Pixels that map outside the
frame are marked invalid in the returned mask, so merges never average in black borders.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from burstsr.burst.config import INTERPOLATIONS

__all__ = ["INTERPOLATIONS", "homography_grid", "warp_frame"]


def homography_grid(
    transform: np.ndarray,
    rows: tuple[int, int],
    width: int,
    src_size: tuple[int, int],
    *,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sampling grid for output rows ``rows[0]:rows[1]`` and the validity mask of those rows.

    Returns:
        grid: ``(1, R, W, 2)`` in ``grid_sample``'s normalised coordinates (align_corners=True).
        mask: ``(R, W)`` bool, True where the sample falls inside the source image.
    """
    src_h, src_w = src_size
    t = torch.as_tensor(transform, dtype=torch.float64).to(device=device, dtype=torch.float32)
    ys = torch.arange(rows[0], rows[1], device=device, dtype=torch.float32)
    xs = torch.arange(width, device=device, dtype=torch.float32)

    # Each mapped coordinate is a*x + (b*y + c): build it as an outer sum, no meshgrid copies.
    def mapped(i: int) -> torch.Tensor:
        return t[i, 0] * xs[None, :] + (t[i, 1] * ys[:, None] + t[i, 2])

    den = mapped(2)
    u = mapped(0) / den
    v = mapped(1) / den
    tol = 1e-3
    mask = (u >= -tol) & (u <= src_w - 1 + tol) & (v >= -tol) & (v <= src_h - 1 + tol) & (den > 0)
    gx = u * (2.0 / max(src_w - 1, 1)) - 1.0
    gy = v * (2.0 / max(src_h - 1, 1)) - 1.0
    return torch.stack([gx, gy], dim=-1)[None], mask


def warp_frame(
    frame: torch.Tensor,
    transform: np.ndarray,
    *,
    out_size: tuple[int, int] | None = None,
    interpolation: str = "bicubic",
    rows_per_chunk: int = 512,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Warp ``frame`` onto the reference grid.

    Args:
        frame: ``float32 (C, H, W)`` on any device.
        transform: 3x3 homography, reference pixel coordinates -> frame pixel coordinates.
        out_size: ``(H, W)`` of the reference grid; the frame's own size by default.
        interpolation: ``"bicubic"`` (Keys, a = -0.75) or ``"bilinear"``.
        rows_per_chunk: rows warped at a time; bounds the temporary grid's memory.

    Returns:
        ``(warped, mask)``: ``float32 (C, H, W)`` and ``bool (H, W)`` on ``frame.device``. Where
        ``mask`` is False the warped values are meaningless (border-clamped).
    """
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    c, h, w = frame.shape
    out_h, out_w = out_size or (h, w)
    warped = torch.empty((c, out_h, out_w), dtype=frame.dtype, device=frame.device)
    mask = torch.empty((out_h, out_w), dtype=torch.bool, device=frame.device)
    src = frame[None]
    for top in range(0, out_h, rows_per_chunk):
        bottom = min(top + rows_per_chunk, out_h)
        grid, valid = homography_grid(transform, (top, bottom), out_w, (h, w), device=frame.device)
        warped[:, top:bottom] = F.grid_sample(
            src, grid.to(frame.dtype), mode=interpolation, padding_mode="border", align_corners=True
        )[0]
        mask[top:bottom] = valid
    return warped, mask
