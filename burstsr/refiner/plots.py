"""Pictures a training run leaves next to its checkpoints: loss curves and a sample grid.

Drawn with OpenCV (no plotting library needed); written atomically as PNG.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from burstsr.io import write_image

_COLOURS = [
    (0.12, 0.47, 0.71),
    (1.0, 0.5, 0.05),
    (0.17, 0.63, 0.17),
    (0.84, 0.15, 0.16),
    (0.58, 0.40, 0.74),
    (0.55, 0.34, 0.29),
]


def _panel(
    title: str,
    series: dict[str, tuple[list[int], list[float]]],
    size=(360, 520),
    log_y: bool = True,
) -> np.ndarray:
    """One chart: white background, axes, a line per series, a legend; float RGB."""
    h, w = size
    img = np.ones((h, w, 3), np.float32)
    left, right, top, bottom = 60, 10, 30, 30
    cv2.putText(img, title, (left, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    xs_all = [x for xs, _ in series.values() for x in xs]
    ys_all = [y for _, ys in series.values() for y in ys if np.isfinite(y) and (y > 0 or not log_y)]
    if not xs_all or not ys_all:
        return img
    f = np.log10 if log_y else (lambda v: np.asarray(v, float))
    x0, x1 = min(xs_all), max(max(xs_all), min(xs_all) + 1)
    y0, y1 = float(np.min(f(ys_all))), float(np.max(f(ys_all)))
    y1 = y1 if y1 > y0 else y0 + 1

    def to_px(x, y):
        px = left + (x - x0) / (x1 - x0) * (w - left - right)
        py = h - bottom - (f(y) - y0) / (y1 - y0) * (h - top - bottom)
        return int(round(px)), int(round(py))

    cv2.rectangle(img, (left, top), (w - right, h - bottom), (0.6, 0.6, 0.6), 1)
    for value, text in (
        (y0, f"{10**y0 if log_y else y0:.3g}"),
        (y1, f"{10**y1 if log_y else y1:.3g}"),
    ):
        py = h - bottom - (value - y0) / (y1 - y0) * (h - top - bottom)
        cv2.putText(
            img, text, (2, int(py) + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA
        )
    cv2.putText(
        img, f"step {x0}", (left, h - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA
    )
    cv2.putText(
        img,
        f"{x1}",
        (w - right - 50, h - 10),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.4,
        (0, 0, 0),
        1,
        cv2.LINE_AA,
    )
    for i, (name, (xs, ys)) in enumerate(series.items()):
        colour = _COLOURS[i % len(_COLOURS)]
        pts = [
            to_px(x, y)
            for x, y in zip(xs, ys, strict=True)
            if np.isfinite(y) and (y > 0 or not log_y)
        ]
        if len(pts) > 1:
            cv2.polylines(img, [np.array(pts, np.int32)], False, colour, 2, cv2.LINE_AA)
        elif pts:
            cv2.circle(img, pts[0], 3, colour, -1)
        cv2.putText(
            img,
            name,
            (left + 8, top + 16 + 16 * i),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            colour,
            1,
            cv2.LINE_AA,
        )
    return img


def loss_curves(history: list[dict], path: Path) -> None:
    """Training losses (log scale) and validation PSNR against step, side by side."""
    losses: dict[str, tuple[list[int], list[float]]] = {}
    val: dict[str, tuple[list[int], list[float]]] = {}
    for entry in history:
        for key, value in entry.items():
            if key.startswith("loss_"):
                xs, ys = losses.setdefault(key[5:], ([], []))
            elif key == "val_psnr":
                xs, ys = val.setdefault("validation PSNR (dB)", ([], []))
            else:
                continue
            xs.append(entry["step"])
            ys.append(float(value))
    chart = np.hstack(
        [
            _panel("training losses (log)", losses),
            _panel("validation PSNR, Y (dB)", val, log_y=False),
        ]
    )
    write_image(path, chart)


@torch.inference_mode()
def sample_grid(
    model: torch.nn.Module, data, path: Path, device: torch.device, count: int = 4, size: int = 96
) -> None:
    """Rows of [merged (bicubic) | refined | HR] centre crops of the first validation pairs."""
    rows = []
    s = data.scale
    for merged, hr in list(zip(data.merged, data.hr, strict=True))[:count]:
        lp = min(size // s, merged.shape[1], merged.shape[2])
        y, x = (merged.shape[1] - lp) // 2, (merged.shape[2] - lp) // 2
        lr = merged[:, y : y + lp, x : x + lp][None].to(device)
        sr = model(lr).clamp(0, 1)[0].cpu()
        up = F.interpolate(lr.cpu(), scale_factor=s, mode="bicubic", align_corners=False)[0]
        target = hr[:, y * s : (y + lp) * s, x * s : (x + lp) * s]
        gap = torch.ones(3, lp * s, 4)
        rows.append(torch.cat([up.clamp(0, 1), gap, sr, gap, target], dim=2))
    if not rows:
        return
    sep = torch.ones(3, 4, rows[0].shape[2])
    grid = torch.cat([r if i == 0 else torch.cat([sep, r], 1) for i, r in enumerate(rows)], 1)
    write_image(path, grid.permute(1, 2, 0).numpy())
