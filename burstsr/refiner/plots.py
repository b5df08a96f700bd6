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
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
]
_GREY, _BLACK = (150, 150, 150), (0, 0, 0)


def _text(img: np.ndarray, text: str, at: tuple[int, int], colour=_BLACK, size=0.4) -> None:
    cv2.putText(img, text, at, cv2.FONT_HERSHEY_SIMPLEX, size, colour, 1, cv2.LINE_AA)


def line_chart(
    title: str,
    series: dict[str, tuple[list[int], list[float]]],
    size=(360, 520),
    log_y: bool = True,
    x_label: str = "step",
) -> np.ndarray:
    """One chart: white background, a frame, a line per series, a legend. uint8 RGB (OpenCV
    draws text only on 8-bit images)."""
    h, w = size
    img = np.full((h, w, 3), 255, np.uint8)
    left, right, top, bottom = 60, 10, 30, 30
    _text(img, title, (left, 20), size=0.5)
    points = {
        name: [
            (x, y) for x, y in zip(xs, ys, strict=True) if np.isfinite(y) and (y > 0 or not log_y)
        ]
        for name, (xs, ys) in series.items()
    }
    xs_all = [x for pts in points.values() for x, _ in pts]
    if not xs_all:
        return img
    f = (lambda v: float(np.log10(v))) if log_y else float
    ys_all = [f(y) for pts in points.values() for _, y in pts]
    x0, x1 = min(xs_all), max(max(xs_all), min(xs_all) + 1)
    y0, y1 = min(ys_all), max(ys_all)
    y1 = y1 if y1 > y0 else y0 + 1

    def to_px(x: float, fy: float) -> tuple[int, int]:
        px = left + (x - x0) / (x1 - x0) * (w - left - right)
        py = h - bottom - (fy - y0) / (y1 - y0) * (h - top - bottom)
        return round(px), round(py)

    cv2.rectangle(img, (left, top), (w - right, h - bottom), _GREY, 1)
    for value in (y0, y1):
        _text(img, f"{10**value if log_y else value:.3g}", (2, to_px(x0, value)[1] + 4))
    _text(img, f"{x_label} {x0}", (left, h - 10))
    _text(img, f"{x1}", (w - right - 50, h - 10))
    for i, (name, pts) in enumerate(points.items()):
        colour = _COLOURS[i % len(_COLOURS)]
        pixels = np.array([to_px(x, f(y)) for x, y in pts], np.int32)
        if len(pixels) > 1:
            cv2.polylines(img, [pixels], False, colour, 2, cv2.LINE_AA)
        elif len(pixels):
            cv2.circle(img, tuple(int(v) for v in pixels[0]), 3, colour, -1)
        _text(img, name, (left + 8, top + 16 + 16 * i), colour, 0.45)
    return img


def loss_curves(history: list[dict], path: Path) -> None:
    """Training losses (log scale), validation PSNR and, in the adversarial phase, the
    discriminator's mean probability of "real" on real and generated crops, against step."""
    losses: dict[str, tuple[list[int], list[float]]] = {}
    val: dict[str, tuple[list[int], list[float]]] = {}
    disc: dict[str, tuple[list[int], list[float]]] = {}
    for entry in history:
        for key, value in entry.items():
            if key.startswith("loss_"):
                xs, ys = losses.setdefault(key[5:], ([], []))
            elif key in ("d_real", "d_fake"):
                xs, ys = disc.setdefault(f"D on {key[2:]} crops", ([], []))
            elif key == "val_psnr":
                xs, ys = val.setdefault("validation PSNR (dB)", ([], []))
            else:
                continue
            xs.append(entry["step"])
            ys.append(float(value))
    panels = [
        line_chart("training losses (log)", losses),
        line_chart("validation PSNR, Y (dB)", val, log_y=False),
    ]
    if disc:
        panels.append(line_chart("discriminator: P(real)", disc, log_y=False))
    chart = np.hstack(panels)
    write_image(path, chart.astype(np.float32) / 255)


@torch.inference_mode()
def sample_grid(
    model: torch.nn.Module, data, path: Path, device: torch.device, count: int = 4, size: int = 96
) -> None:
    """Rows of [merged (bicubic) | refined | HR] centre crops of the first validation pairs."""
    rows = []
    s, a = data.scale, data.align
    for merged, hr in list(zip(data.merged, data.hr, strict=True))[:count]:
        lp = min(size // s, merged.shape[1], merged.shape[2]) // a * a
        y, x = (merged.shape[1] - lp) // 2 // a * a, (merged.shape[2] - lp) // 2 // a * a
        lr = merged[:, y : y + lp, x : x + lp][None].to(device)
        sr = model(lr).clamp(0, 1)[0].cpu()
        up = F.interpolate(lr[:, :3].cpu(), scale_factor=s, mode="bicubic", align_corners=False)[0]
        target = hr[:, y * s : (y + lp) * s, x * s : (x + lp) * s]
        gap = torch.ones(3, lp * s, 4)
        rows.append(torch.cat([up.clamp(0, 1), gap, sr, gap, target], dim=2))
    if not rows:
        return
    sep = torch.ones(3, 4, rows[0].shape[2])
    grid = torch.cat([r if i == 0 else torch.cat([sep, r], 1) for i, r in enumerate(rows)], 1)
    write_image(path, grid.permute(1, 2, 0).numpy())
