"""Merging onto a finer grid: multi-frame super-resolution by kernel regression.

Two accumulators, chosen by ``MergeConfig.kernel``:

``adaptive`` (:class:`KernelAccumulator`, the default) gathers, for every fine pixel, the 3x3
samples of each frame nearest to where that pixel falls in the frame, weighted by an
anisotropic kernel that follows the reference's local structure (:mod:`burstsr.burst.kernels`):
wide in flat areas, narrow across edges. Uneven sampling (few frames, almost-still frames,
zoom) then shows no pattern, and the accumulated weight is a per-pixel confidence map.

``gaussian`` (:class:`SplatAccumulator`) splats each frame sample onto nearby fine pixels with a
fixed narrow Gaussian; the grid earlier models were trained on.

Handheld frames sample the scene at different sub-pixel positions. Instead of resampling every
frame onto the reference's own grid (which throws that diversity away), each frame pixel is
placed at its exact position on a ``scale`` times finer grid - given by the estimated transform -
and spread onto the nearby fine pixels with a Gaussian kernel. Accumulated values are divided by
accumulated weights; fine pixels that no sample reached (holes) take the bicubic upscaling of the
ordinary merge. This is the accumulation step of drizzle (Fruchter & Hook 2002) and of the
kernel-regression merge of Wronski et al., "Handheld Multi-Frame Super-Resolution" (SIGGRAPH
2019), with an isotropic kernel; per-pixel robustness weights (from the robust merge) multiply
each sample's kernel weight.

Coordinates: reference pixel ``x`` (centres at integers) is fine pixel ``scale * x +
(scale - 1) / 2``.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import torch
import torch.nn.functional as F

from burstsr.burst.kernels import KernelParams, difference_noise, kernel_precision, noise_sigma
from burstsr.burst.warp import warp_frame

# Kernel exponents are floored here before exp (see KernelAccumulator._gather).
EXP_FLOOR = -80.0
# Fine pixels gathered at a time by the adaptive kernels: a wide output (6400 px) takes 20 rows a
# chunk, 80 a band (1.20 GB peak merging the example phone burst x4, 1.39 GB at 64 and 256), at the
# same speed; a narrow one keeps 64 rows, which is faster there (0.57 s against 0.82 s at 16
# for 768 px).
CHUNK_PIXELS = 2**17


def fine_positions(
    inverse: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor, scale: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Where frame pixels ``(xs, ys)`` land on the reference's ``scale`` times finer grid,
    flattened; ``inverse`` (3x3, float64) maps frame to reference pixel coordinates."""
    den = inverse[2, 0] * xs + inverse[2, 1] * ys + inverse[2, 2]
    rx = (inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]) / den
    ry = (inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]) / den
    offset = (scale - 1) / 2
    return (scale * rx + offset).reshape(-1), (scale * ry + offset).reshape(-1)


class SplatAccumulator:
    """Numerator and weight of the fine grid; add frames one at a time (streaming).

    Args:
        reference: the reference frame ``(C, h, w)`` (its size, channels and device).
        scale: the fine grid is ``scale`` times finer than the reference's.
        sigma: the kernel's width in fine pixels (default: 0.15 frame pixels, at least 0.3).
    """

    def __init__(self, reference: torch.Tensor, scale: int, *, sigma: float | None = None) -> None:
        channels, size, device = reference.shape[0], reference.shape[1:], reference.device
        self.scale = scale
        self.h, self.w = size[0] * scale, size[1] * scale
        # Kernel width in fine pixels: narrow (0.15 frame pixels, at least 0.3 fine pixels);
        # wider kernels blur the detail the burst's sub-pixel diversity recovers (measured on
        # simulated Kodak bursts: 0.15 > 0.2 > 0.25 > 0.3 frame pixels, x2 and x4).
        self.sigma = sigma if sigma is not None else max(0.15 * scale, 0.3)
        self.radius = max(1, math.ceil(2 * self.sigma))
        self.total = torch.zeros(channels, self.h * self.w, device=device)
        self.weight = torch.zeros(self.h * self.w, device=device)

    def add(
        self, frame: torch.Tensor, transform: np.ndarray, confidence: torch.Tensor | None = None
    ) -> None:
        """Splat ``frame`` (``(C, h, w)``, its own pixel grid) whose transform maps reference
        coordinates to frame coordinates; ``confidence`` (``(h_ref, w_ref)``, on the reference
        grid, e.g. robust weights) scales each sample's weight."""
        c, h, w = frame.shape
        device = frame.device
        if confidence is not None:  # onto the frame's grid, where the samples are
            confidence = warp_frame(
                confidence[None],
                np.linalg.inv(transform),
                out_size=(h, w),
                interpolation="bilinear",
            )[0][0]
        inverse = torch.as_tensor(np.linalg.inv(transform), dtype=torch.float64, device=device)
        ys, xs = torch.meshgrid(
            torch.arange(h, device=device, dtype=torch.float64),
            torch.arange(w, device=device, dtype=torch.float64),
            indexing="ij",
        )
        fx, fy = fine_positions(inverse, xs, ys, self.scale)
        values = frame.reshape(c, -1)
        conf = None if confidence is None else confidence.reshape(-1).to(values.dtype)
        cx, cy = torch.round(fx), torch.round(fy)
        for dy in range(-self.radius, self.radius + 1):
            for dx in range(-self.radius, self.radius + 1):
                tx, ty = cx + dx, cy + dy
                inside = (tx >= 0) & (tx < self.w) & (ty >= 0) & (ty < self.h)
                dist2 = (tx - fx) ** 2 + (ty - fy) ** 2
                k = torch.exp(-dist2 / (2 * self.sigma**2)).to(values.dtype)
                if conf is not None:
                    k = k * conf
                k = torch.where(inside, k, torch.zeros_like(k))
                index = (ty.clamp(0, self.h - 1) * self.w + tx.clamp(0, self.w - 1)).long()
                self.weight.index_add_(0, index, k)
                self.total.index_add_(1, index, values * k)

    def result(
        self, fallback: torch.Tensor, *, min_weight: float = 1e-3
    ) -> tuple[torch.Tensor, None]:
        """The fine image ``(C, H*s, W*s)`` (and no confidence map); pixels with less than
        ``min_weight`` of accumulated weight take the bicubic upscaling of ``fallback`` (the
        merge on the reference grid)."""
        image = (self.total / self.weight.clamp(min=1e-12)).reshape(-1, self.h, self.w)
        up = F.interpolate(
            fallback[None], scale_factor=self.scale, mode="bicubic", align_corners=False
        )[0]
        # Blend smoothly into the fallback where the weight is low, instead of a hard switch.
        alpha = (self.weight.reshape(1, self.h, self.w) / (4 * min_weight)).clamp(max=1.0)
        return alpha * image + (1 - alpha) * up, None


class KernelAccumulator:
    """Fine-grid kernel regression with structure-adaptive kernels; add frames one at a time.

    The fine grid is built band by band: :meth:`add` keeps each frame (at its own size, in
    half precision) and :meth:`result` gathers every frame's samples into one band of fine
    rows at a time, so the memory holds the frames, the output and one band's accumulators,
    not four accumulators of the whole fine grid (a 12 MP burst on the x4 grid is a 192 MP
    image).

    Args:
        reference: the reference frame ``(C, h, w)``; its luma sets the kernels.
        scale: the fine grid is ``scale`` times finer than the reference's.
        params: kernel shapes (:class:`~burstsr.burst.kernels.KernelParams`).
        rows_per_chunk: fine rows gathered at a time (bounds the temporaries' memory);
            default: about :data:`CHUNK_PIXELS` fine pixels' worth, 16 to 64 rows.
        chunks_per_band: chunks of fine rows accumulated before they are finished and written.
    """

    def __init__(
        self,
        reference: torch.Tensor,
        scale: int,
        *,
        params: KernelParams = KernelParams(),
        rows_per_chunk: int | None = None,
        chunks_per_band: int = 4,
    ) -> None:
        c, h, w = reference.shape
        self.scale = scale
        self.h, self.w = h * scale, w * scale
        if rows_per_chunk is None:
            rows_per_chunk = min(64, max(16, CHUNK_PIXELS // self.w))
        self.rows_per_chunk = rows_per_chunk
        self.rows_per_band = rows_per_chunk * chunks_per_band
        # The kernels (on the frame grid) are made once the burst's noise is known: see
        # measure_noise and precision.
        self.params = params
        self.luma: torch.Tensor | None = reference.mean(dim=0)
        self.noise_levels: list[float] = []
        self._precision: torch.Tensor | None = None
        self._noise: float | None = None
        self.wide = 1 / (2 * params.denoise**2)
        self.per_frame = 2 * math.pi * params.denoise**2  # a whole frame's weight, wide kernel
        self.enough = params.enough
        # Per frame: its samples (h * w, C: a pixel's channels together, so gathering pixels
        # reads whole rows; half precision), its size, transform and confidence.
        self.frames: list[tuple[torch.Tensor, tuple[int, int], np.ndarray, torch.Tensor | None]]
        self.frames = []

    def add(
        self, frame: torch.Tensor, transform: np.ndarray, confidence: torch.Tensor | None = None
    ) -> None:
        """Add ``frame`` (``(C, h, w)``, its own pixel grid) whose transform maps reference
        coordinates to frame coordinates; ``confidence`` (``(h_ref, w_ref)``, on the reference
        grid, e.g. robust weights) scales its weight. Its samples are gathered by
        :meth:`result`."""
        c, h, w = frame.shape
        # Kept in half precision (a relative error of at most 2**-11, far below any burst's
        # noise), a copy made once and reused by every band.
        samples = frame.reshape(c, h * w).t().to(torch.float16).contiguous()
        if confidence is not None:
            confidence = confidence.to(torch.float16)
        self.frames.append((samples, (h, w), np.asarray(transform, np.float64), confidence))

    def measure_noise(self, aligned: torch.Tensor, valid: torch.Tensor) -> None:
        """Measure the burst's noise from ``aligned`` (``(C, h, w)``, a frame warped onto the
        reference's grid) where ``valid`` (``(h, w)``), against the reference
        (:func:`~burstsr.burst.kernels.difference_noise`); the kernels use the median over
        the frames measured."""
        if self.luma is None:
            raise RuntimeError("measure_noise after the kernels were made")
        level = difference_noise(self.luma, aligned.float().mean(dim=0), valid.bool())
        if level is not None:
            self.noise_levels.append(level)

    @property
    def noise(self) -> float:
        """The noise the kernels judge flat areas by: the larger of the reference's own
        (:func:`~burstsr.burst.kernels.noise_sigma`, exact for independent noise) and the
        median the aligned frames measured (which also sees noise the camera's processing
        spread over a few pixels). Fixed once the kernels are made."""
        if self._noise is None:
            own = noise_sigma(self.luma)
            levels = self.noise_levels
            return max(own, statistics.median(levels)) if levels else own
        return self._noise

    @property
    def precision(self) -> torch.Tensor:
        """The kernel shapes ``(3, h, w)`` on the reference grid
        (:func:`~burstsr.burst.kernels.kernel_precision`), made on first use."""
        if self._precision is None:
            self._noise = self.noise
            self._precision = kernel_precision(self.luma, params=self.params, noise=self._noise)
            self.luma = None
        return self._precision

    def _fine_rows(self, coarse: torch.Tensor, top: int, bottom: int, mode: str) -> torch.Tensor:
        """Rows ``top:bottom`` of ``coarse`` ``(C, h, w)`` upsampled ``scale`` times
        (``align_corners=False``), from the coarse rows they need only: the same values as
        upsampling the whole of it."""
        s, margin = self.scale, 2  # bicubic reads 2 rows on either side
        c0 = max(top // s - margin, 0)
        c1 = min(-(-bottom // s) + margin, coarse.shape[1])
        up = F.interpolate(
            coarse[None, :, c0:c1].float(), scale_factor=s, mode=mode, align_corners=False
        )[0]
        return up[:, top - c0 * s : bottom - c0 * s]

    def _gather(
        self,
        values: torch.Tensor,
        size: tuple[int, int],
        transform: np.ndarray,
        top: int,
        bottom: int,
        precision: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        """Fine rows ``top:bottom``: the structure kernels' and the round kernels' sums of the
        3x3 nearest samples of a frame (``values`` ``(h * w, C)`` of ``size`` ``(h, w)``), and
        their weights (``precision``: those rows' kernel shapes)."""
        (_, c), (h, w) = values.shape, size
        device = values.device
        s = self.scale
        t = torch.as_tensor(transform, dtype=torch.float64, device=device)
        # Offsets measured in the frame are brought back to reference pixels through the
        # transform's Jacobian at the image centre (exact for affine motion).
        centre = np.array([(self.w / s - 1) / 2, (self.h / s - 1) / 2, 1.0])
        mapped = transform @ centre
        jacobian = (
            transform[:2, :2] - np.outer(mapped[:2] / mapped[2], transform[2, :2])
        ) / mapped[2]
        # Its inverse, rounded to float32 as the offsets are computed.
        t00, t01, t10, t11 = (float(np.float32(v)) for v in np.linalg.inv(jacobian).reshape(-1))
        xs = (torch.arange(self.w, device=device, dtype=torch.float64) - (s - 1) / 2) / s
        ys = (torch.arange(top, bottom, device=device, dtype=torch.float64) - (s - 1) / 2) / s
        den = t[2, 0] * xs[None, :] + (t[2, 1] * ys[:, None] + t[2, 2])
        qx = ((t[0, 0] * xs[None, :] + (t[0, 1] * ys[:, None] + t[0, 2])) / den).float()
        qy = ((t[1, 0] * xs[None, :] + (t[1, 1] * ys[:, None] + t[1, 2])) / den).float()
        nx, ny = torch.round(qx), torch.round(qy)
        # Offsets (reference pixels) from the fine pixel to its nearest sample.
        fx, fy = qx - nx, qy - ny
        dx0 = t00 * fx + t01 * fy
        dy0 = t10 * fx + t11 * fy
        del fx, fy, qx, qy
        pxx, pxy, pyy = precision
        # A neighbour (ox, oy) samples away is at d0 - T (ox, oy), T the matrix t00..t11, so
        # each kernel's exponent there (a quadratic form in that offset) splits into a part of
        # ox alone and a part of oy and the sign of ox * oy: ex[ox] + ey[oy, sign]. Those parts
        # are made once (3 + 7 of them, with -inf where the neighbour falls outside the frame);
        # each neighbour then costs one add and one exp per kernel. ex[ox] is the structure
        # kernel's exponent at (ox, 0), at most 0.
        grad_x = pxx * dx0 + pxy * dy0  # half the gradient of the form in (dx, dy)
        grad_y = pxy * dx0 + pyy * dy0
        form = dx0 * grad_x + dy0 * grad_y  # pxx dx^2 + 2 pxy dx dy + pyy dy^2
        u = t00 * grad_x + t10 * grad_y
        v = t01 * grad_x + t11 * grad_y
        qxx = t00 * t00 * pxx + (2 * t00 * t10) * pxy + t10 * t10 * pyy
        qyy = t01 * t01 * pxx + (2 * t01 * t11) * pxy + t11 * t11 * pyy
        qxy = t00 * t01 * pxx + (t00 * t11 + t10 * t01) * pxy + t10 * t11 * pyy
        radius2 = dx0 * dx0 + dy0 * dy0
        ux, vy = t00 * dx0 + t10 * dy0, t01 * dx0 + t11 * dy0
        sxx, syy, sxy = t00 * t00 + t10 * t10, t01 * t01 + t11 * t11, t00 * t01 + t10 * t11
        wide = self.wide
        outside = float("-inf")
        # Neighbours off the frame are masked, axis by axis, only where some are: in y, every
        # chunk but those at the frame's top and bottom needs none.
        x_lo, x_hi, y_lo, y_hi = torch.stack([nx.min(), nx.max(), ny.min(), ny.max()]).tolist()

        def off_frame(
            n: torch.Tensor, o: int, lo: float, hi: float, size: int
        ) -> torch.Tensor | None:
            """Where neighbour ``o`` of ``n`` is not inside ``0..size-1``; None if nowhere."""
            if lo + o >= 0 and hi + o <= size - 1:
                return None
            return ~((n + o >= 0) & (n + o <= size - 1))

        def masked(t: torch.Tensor, where: torch.Tensor | None) -> torch.Tensor:
            return t if where is None else t.masked_fill_(where, outside)

        ex, wx, ey, wy = {}, {}, {}, {}
        for o in (-1, 0, 1):
            out_x, out_y = off_frame(nx, o, x_lo, x_hi, w), off_frame(ny, o, y_lo, y_hi, h)
            ex[o] = masked(-0.5 * form + o * u - (0.5 * o * o) * qxx, out_x)
            wx[o] = masked(-wide * radius2 + (2 * wide * o) * ux - wide * o * o * sxx, out_x)
            for sign in (-1, 0, 1) if o else (0,):
                ey[o, sign] = masked(o * v - (0.5 * o * o) * qyy - sign * qxy, out_y)
                part = 2 * wide * o * vy - wide * (o * o * syy + 2 * sign * sxy)
                wy[o, sign] = masked(part, out_y)
        del grad_x, grad_y, form, u, v, qxx, qyy, qxy, radius2, ux, vy
        # int32 indices (half the memory traffic of int64; frames have far fewer than 2**31
        # pixels), multiplied out as integers: float32 holds whole numbers exactly only up to
        # 2**24, which a frame over 16 MP passes.
        col = {o: (nx + o).clamp_(0, w - 1).int() for o in (-1, 0, 1)}
        row = {o: (ny + o).clamp_(0, h - 1).int() * w for o in (-1, 0, 1)}
        total = torch.zeros(c, bottom - top, self.w, device=device)
        weight = torch.zeros(bottom - top, self.w, device=device)
        total_wide = torch.zeros(c, bottom - top, self.w, device=device)
        weight_wide = torch.zeros(bottom - top, self.w, device=device)
        for oy in (-1, 0, 1):
            for ox in (-1, 0, 1):
                sign = ox * oy
                # Floored before exp: below about -87 the exponential's underflow path is 40
                # times slower on the CPU; exp(-80) is nothing beside any real weight.
                k = torch.add(ex[ox], ey[oy, sign]).clamp_min_(EXP_FLOOR).exp_()
                k_wide = torch.add(wx[ox], wy[oy, sign]).clamp_min_(EXP_FLOOR).exp_()
                index = (row[oy] + col[ox]).reshape(-1)
                v = values.index_select(0, index).float().t().reshape(c, bottom - top, self.w)
                total.addcmul_(v, k)
                weight += k
                total_wide.addcmul_(v, k_wide)
                weight_wide += k_wide
        return total, weight, total_wide, weight_wide

    def result(
        self, fallback: torch.Tensor, *, min_weight: float = 0.05
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The fine image ``(C, H*s, W*s)`` (a view of a row-major ``(H*s, W*s, C)`` tensor)
        and its confidence ``(H*s, W*s)``: the accumulated weight of the round kernels in units
        of one frame, i.e. about how many frames reached each fine pixel (fewer where the robust
        merge rejected some; 0 where none did).

        Where the structure kernels gathered less than ``enough`` weight (few samples nearby:
        few or almost-still frames, zoom) the estimate blends into the wide, round kernels'
        one, so sparse sampling gives a smooth estimate instead of the nearest sample; pixels
        that even those barely reached blend into the bicubic upscaling of ``fallback`` (the
        ordinary merge). The frames are released once their samples are gathered."""
        c, device = fallback.shape[0], fallback.device
        out = torch.empty(self.h, self.w, c, device=device)
        confidence = torch.empty(self.h, self.w, device=device)
        chunk = self.rows_per_chunk
        for top in range(0, self.h, self.rows_per_band):
            bottom = min(top + self.rows_per_band, self.h)
            precision = self._fine_rows(self.precision, top, bottom, "bilinear")
            total = torch.zeros(c, bottom - top, self.w, device=device)
            weight = torch.zeros(bottom - top, self.w, device=device)
            total_wide = torch.zeros(c, bottom - top, self.w, device=device)
            weight_wide = torch.zeros(bottom - top, self.w, device=device)
            for values, size, transform, frame_confidence in self.frames:
                fine_conf = None
                if frame_confidence is not None:
                    fine_conf = self._fine_rows(frame_confidence[None], top, bottom, "bilinear")[0]
                for start in range(top, bottom, chunk):
                    end, rows = min(start + chunk, bottom), slice(start - top, start - top + chunk)
                    sums = self._gather(values, size, transform, start, end, precision[:, rows])
                    if fine_conf is not None:
                        for acc in sums:
                            acc *= fine_conf[rows]
                    total[:, rows] += sums[0]
                    weight[rows] += sums[1]
                    total_wide[:, rows] += sums[2]
                    weight_wide[rows] += sums[3]
            sharp = total / weight.clamp(min=1e-12)
            smooth = total_wide / weight_wide.clamp(min=1e-12)
            beta = (weight / self.enough).clamp(max=1.0)
            image = beta * sharp + (1 - beta) * smooth
            alpha = (weight_wide / min_weight).clamp(max=1.0)  # (1 - alpha): no sample near
            up = self._fine_rows(fallback, top, bottom, "bicubic")
            out[top:bottom] = (alpha * image + (1 - alpha) * up).permute(1, 2, 0)
            confidence[top:bottom] = weight_wide / self.per_frame
        self.frames = []
        return out.permute(2, 0, 1), confidence


# The finer grid's accumulators by ``--kernel`` name; each is built from the reference frame.
ACCUMULATORS = {"adaptive": KernelAccumulator, "gaussian": SplatAccumulator}
KERNELS = tuple(ACCUMULATORS)
