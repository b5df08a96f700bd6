"""Full-resolution refinement of a transform on a sparse set of pixels.

ECC on a whole pyramid level costs a few full-image passes per iteration, so burstsr runs it only
on levels of at most ~1 MP. This module then refines the result on the full-resolution images,
touching only ``K`` well-textured reference pixels (30 000 to 75 000) per iteration: an inverse
compositional Gauss-Newton fit (Baker & Matthews 2004) of the motion model, with a per-iteration
gain/offset fit of the frame's intensities (as ECC is invariant to them) and Huber weights (so
a few moving or occluded pixels do not pull the fit). The Hessian is computed once per burst,
from the reference; each iteration samples the frame at ``K`` points (bicubic) and solves an
8x8 system. Samples are Catmull-Rom interpolated at exact positions.

Reference: S. Baker, I. Matthews, "Lucas-Kanade 20 Years On: A Unifying Framework", IJCV 56(3),
2004.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Template:
    """The reference's sample points and the parts of the fit that depend only on them.

    Attributes:
        points: ``float32 (K, 2)`` pixel coordinates (x, y) in the reference.
        values: ``float64 (K,)`` reference intensities there.
        jacobian: ``float64 (K, P)`` d intensity / d motion parameters (steepest descent images).
        centre, scale: the coordinate normalisation of the parameters.
        motion: the motion model.
    """

    points: np.ndarray
    values: np.ndarray
    jacobian: np.ndarray
    centre: np.ndarray
    scale: float
    motion: str


def prepare_template(
    gray: np.ndarray, motion: str, *, samples: int | None = None, margin: int = 16
) -> Template | None:
    """Pick up to ``samples`` strongly textured pixels of the reference (default: one in 40,
    at least 30 000 and at most 75 000), spread over a grid of cells so that every part of the
    image constrains the fit. None if the image is too flat."""
    h, w = gray.shape
    if samples is None:
        samples = int(np.clip(h * w // 40, 30_000, 75_000))
    if h < 4 * margin or w < 4 * margin:
        return None
    smooth = cv2.GaussianBlur(gray, (0, 0), 1.0)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3, scale=1 / 8)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3, scale=1 / 8)
    strength = gx * gx + gy * gy
    cells = 16
    per_cell = max(1, samples // (cells * cells))
    ys, xs = [], []
    y_edges = np.linspace(margin, h - margin, cells + 1).astype(int)
    x_edges = np.linspace(margin, w - margin, cells + 1).astype(int)
    for y0, y1 in zip(y_edges[:-1], y_edges[1:], strict=True):
        for x0, x1 in zip(x_edges[:-1], x_edges[1:], strict=True):
            block = strength[y0:y1, x0:x1]
            if block.size == 0:
                continue
            k = min(per_cell, block.size)
            best = np.argpartition(block.ravel(), block.size - k)[block.size - k :]
            by, bx = np.unravel_index(best, block.shape)
            ys.append(by + y0)
            xs.append(bx + x0)
    ys, xs = np.concatenate(ys), np.concatenate(xs)
    order = np.argsort(ys * w + xs)  # row-major order: the frame is read in memory order
    ys, xs = ys[order], xs[order]
    grad = np.stack([gx[ys, xs], gy[ys, xs]], axis=1).astype(np.float64)
    if np.median(np.hypot(grad[:, 0], grad[:, 1])) < 1e-4:
        return None
    centre = np.array([(w - 1) / 2, (h - 1) / 2])
    scale = max(w, h) / 2
    points = np.stack([xs, ys], axis=1).astype(np.float64)
    jacobian = _steepest_descent(grad, (points - centre) / scale, scale, motion)
    values = smooth[ys, xs].astype(np.float64)
    return Template(points.astype(np.float32), values, jacobian, centre, scale, motion)


def _steepest_descent(grad: np.ndarray, xn: np.ndarray, scale: float, motion: str) -> np.ndarray:
    """d I / d params at each point: the image gradient times d(displacement)/d(params).

    Parameters (in normalised coordinates xn = (x - centre) / scale): translation (tx, ty) in
    pixels; rotation theta; affine a11, a12, a21, a22; perspective p1, p2 (per normalised unit).
    """
    gx, gy = grad[:, 0], grad[:, 1]
    x, y = xn[:, 0], xn[:, 1]
    cols = [gx, gy]
    if motion == "euclidean":
        cols.append(scale * (-gx * y + gy * x))
    elif motion in ("affine", "homography"):
        cols += [gx * x, gx * y, gy * x, gy * y]
        if motion == "homography":
            r = scale * (gx * x + gy * y)
            cols += [-r * x, -r * y]
    return np.stack(cols, axis=1)


def _increment(params: np.ndarray, template: Template) -> np.ndarray:
    """The 3x3 increment (pixel coordinates) for a parameter vector."""
    s, (cx, cy) = template.scale, template.centre
    d = np.eye(3)
    d[0, 2], d[1, 2] = params[0], params[1]
    if template.motion == "euclidean":
        c, sn = np.cos(params[2]), np.sin(params[2])
        d[:2, :2] = [[c, -sn], [sn, c]]
    elif template.motion in ("affine", "homography"):
        d[0, 0] += params[2] / s
        d[0, 1] += params[3] / s
        d[1, 0] += params[4] / s
        d[1, 1] += params[5] / s
        if template.motion == "homography":
            d[2, 0], d[2, 1] = params[6] / s, params[7] / s
    to_centre = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]])
    return np.linalg.inv(to_centre) @ d @ to_centre


def refine_transform(
    template: Template,
    frame: np.ndarray,
    transform: np.ndarray,
    *,
    iterations: int = 5,
    tolerance: float = 5e-3,
) -> np.ndarray:
    """Refine ``transform`` (reference -> frame pixels) against the full-resolution gray ``frame``.

    Stops when the update moves no point by more than ``tolerance`` pixels. Returns the input
    transform unchanged when too few template points land inside the frame.
    """
    h, w = frame.shape
    smooth = cv2.GaussianBlur(frame, (0, 0), 1.0)
    pts = np.concatenate([template.points, np.ones((len(template.points), 1))], 1)
    current = transform.copy()
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [w - 1, h - 1, 1], [0, h - 1, 1]], float).T
    for _ in range(iterations):
        mapped = pts @ current.T
        u = mapped[:, 0] / mapped[:, 2]
        v = mapped[:, 1] / mapped[:, 2]
        inside = (u >= 1) & (u <= w - 2) & (v >= 1) & (v <= h - 2) & (mapped[:, 2] > 0)
        if inside.sum() < 50 * template.jacobian.shape[1]:
            break
        if inside.all():  # the usual case: skip the copies
            sampled, ref_vals, jac = _sample(smooth, u, v), template.values, template.jacobian
        else:
            sampled = _sample(smooth, u[inside], v[inside])
            ref_vals, jac = template.values[inside], template.jacobian[inside]
        # Gain and offset that best map the frame's intensities onto the reference's.
        centred = sampled - sampled.mean()
        spread = float(centred @ centred)
        gain = float(centred @ ref_vals) / spread if spread > 0 else 1.0
        offset = ref_vals.mean() - gain * sampled.mean()
        error = gain * sampled + offset - ref_vals
        # Huber weights, scale from the median absolute residual.
        sigma = 1.4826 * np.median(np.abs(error)) + 1e-12
        k = 1.345 * sigma
        weights = np.where(np.abs(error) <= k, 1.0, k / np.abs(error))
        jw = jac * weights[:, None]
        hessian = jac.T @ jw
        try:
            params = np.linalg.solve(hessian, jw.T @ error)
        except np.linalg.LinAlgError:
            break
        step = _increment(params, template)
        current = current @ np.linalg.inv(step)
        current /= current[2, 2]
        moved = step @ corners
        if np.max(np.abs(moved[:2] / moved[2] - corners[:2])) < tolerance:
            break
    return current


def _sample(image: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Catmull-Rom (Keys, a = -0.5) samples of ``image`` at float64 positions (u, v).

    Exact in the position (OpenCV's remap rounds it to 1/32 px) and with the cubic kernel that
    reproduces quadratics (a = -0.75, OpenCV's and torch's, biases sub-pixel fits slightly).
    The caller keeps (u, v) at least one pixel inside the image (no bounds checks here).
    """
    w = image.shape[1]
    x0 = np.floor(u).astype(np.int64)
    y0 = np.floor(v).astype(np.int64)
    wx = _catmull_rom((u - x0).astype(np.float32))  # (K, 4) weights for offsets -1..2
    wy = _catmull_rom((v - y0).astype(np.float32))
    offsets = (np.arange(4)[:, None] * w + np.arange(4)[None, :]).ravel()
    taps = np.take(image.ravel(), ((y0 - 1) * w + (x0 - 1))[:, None] + offsets[None, :])
    rows = np.matmul(taps.reshape(-1, 4, 4), wx[:, :, None])  # along x: (K, 4, 1)
    return np.matmul(wy[:, None, :], rows)[:, 0, 0].astype(np.float64)  # then along y


def _catmull_rom(t: np.ndarray) -> np.ndarray:
    """Weights of the four taps at offsets -1, 0, 1, 2 for fractional positions ``t``."""
    t2, t3 = t * t, t * t * t
    return 0.5 * np.stack(
        [-t3 + 2 * t2 - t, 3 * t3 - 5 * t2 + 2, -3 * t3 + 4 * t2 + t, t3 - t2], axis=1
    )
