"""What a refiner does inside: its per-layer feature maps on a crop, as one picture.

:func:`activations` runs the generator once with forward hooks on its stages (head, every
residual block, the body's last conv, each upsampling stage, tail; for an any-scale model the
latent field's mean and log-variance instead of the last two); :func:`activation_figure`
lays them out: a caption per layer (name, channels, size, value range) over a grid of its most
active channels, each shown on the layer's own scale with a perceptual colour map, below the
input crop, the model's output and, for a burst, the merge's confidence map.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

from burstsr.errors import InputError
from burstsr.io.confidence import confidence_channel
from burstsr.refiner.networks import Generator

CELL = 96  # display size of one feature map, pixels
COLUMNS = 8  # feature maps per row
CAPTION = 22  # caption bar height, pixels


@dataclass
class Activation:
    """One layer's output on the crop: ``maps`` ``float32 (C, h, w)``."""

    name: str
    maps: np.ndarray

    @property
    def caption(self) -> str:
        c, h, w = self.maps.shape
        lo, hi = float(self.maps.min()), float(self.maps.max())
        return f"{self.name}: {c} channels, {w}x{h}, range [{lo:.3g}, {hi:.3g}]"


def layer_names(generator: Generator) -> list[str]:
    """The stages :func:`activations` can show, in the order data flows through them."""
    names = ["head"] + [f"body.{i}" for i in range(len(generator.body))] + ["body_tail"]
    if generator.config.any_scale:  # the latent field; the decoder works per output pixel
        return names + ["mean", "logvar"]
    names += [f"upsample.{i}" for i, m in enumerate(generator.upsample) if isinstance(m, nn.PReLU)]
    return names + ["tail"]


@torch.no_grad()
def activations(
    generator: Generator,
    image: np.ndarray,
    *,
    confidence: np.ndarray | None = None,
    layers: list[str] | None = None,
) -> tuple[list[Activation], np.ndarray]:
    """Run ``generator`` on ``image`` (``float32 (H, W, 3)``, a crop) and keep the outputs of
    ``layers`` (default: every one of :func:`layer_names`). ``confidence``: for a model that
    reads it, the merge's confidence map of the crop (default: an evenly sampled 8-frame
    burst). Returns the activations and the model's output ``(H * s, W * s, 3)``.

    Raises:
        InputError: a layer name the model does not have.
    """
    known = layer_names(generator)
    layers = known if layers is None else layers
    for name in layers:
        if name not in known:
            raise InputError(f"--layers {name}: the model has no such layer; it has {known}")
    generator.eval()
    device = next(generator.parameters()).device
    x = image[:, :, :3]
    if generator.config.confidence:
        if confidence is None:
            confidence = np.full(image.shape[:2], 8.0, np.float32)
        x = np.concatenate([x, confidence_channel(confidence)], axis=2)
    found: dict[str, np.ndarray] = {}
    hooks = []
    for name in layers:

        def keep(module, inputs, output, name=name):
            found[name] = output[0].float().cpu().numpy()

        hooks.append(generator.get_submodule(name).register_forward_hook(keep))
    try:
        tensor = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None].to(device)
        out = generator(tensor)[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    finally:
        for hook in hooks:
            hook.remove()
    return [Activation(name, found[name]) for name in layers], out


def _colour(maps: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``(h, w)`` values -> ``(CELL, CELL, 3)`` RGB in [0, 1] (viridis, nearest-neighbour)."""
    scaled = np.clip((maps - lo) / max(hi - lo, 1e-12), 0, 1)
    coloured = cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)
    cell = cv2.resize(coloured, (CELL, CELL), interpolation=cv2.INTER_NEAREST)
    return cell[:, :, ::-1].astype(np.float32) / 255


def _caption(text: str, width: int) -> np.ndarray:
    bar = np.full((CAPTION, width, 3), 255, np.uint8)
    cv2.putText(bar, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return bar.astype(np.float32) / 255


def _panel(image: np.ndarray, side: int) -> np.ndarray:
    """An image fitted into a ``side`` x ``side`` square (nearest, aspect kept, white pad)."""
    h, w = image.shape[:2]
    f = side / max(h, w)
    resized = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), cv2.INTER_NEAREST)
    out = np.ones((side, side, 3), np.float32)
    out[: resized.shape[0], : resized.shape[1]] = resized.reshape(*resized.shape[:2], -1)[:, :, :3]
    return out


def activation_figure(
    layers: list[Activation],
    panels: list[tuple[str, np.ndarray]],
    *,
    channels: int = 16,
) -> tuple[np.ndarray, list[tuple[str, int, int]]]:
    """The picture: ``panels`` (title, RGB image, e.g. input, output, confidence) in a first
    row, then each layer's caption and its ``channels`` most active maps (largest standard
    deviation), :data:`COLUMNS` a row, on the layer's 1st-99th percentile range.

    Returns the picture ``float32 (H, W, 3)`` and the layout: (layer name, first row, last
    row) of each layer's block.
    """
    width = COLUMNS * CELL
    side = width // max(len(panels), 2)
    rows = [_caption("   |   ".join(title for title, _ in panels), width)]
    top = np.ones((side, width, 3), np.float32)
    for i, (_, image) in enumerate(panels):
        shown = image if image.ndim == 3 else _colour(image, 0, max(float(image.max()), 1e-6))
        top[:, i * side : (i + 1) * side] = _panel(shown, side)
    rows.append(top)
    layout, y = [], sum(r.shape[0] for r in rows)
    for act in layers:
        spread = act.maps.reshape(len(act.maps), -1).std(axis=1)
        order = np.argsort(-spread)[:channels]
        lo, hi = np.percentile(act.maps[order], [1, 99])
        cells = [_colour(act.maps[c], lo, hi) for c in order]
        cells += [np.ones((CELL, CELL, 3), np.float32)] * (-len(cells) % COLUMNS)
        grid = np.vstack([np.hstack(cells[i : i + COLUMNS]) for i in range(0, len(cells), COLUMNS)])
        block = np.vstack([_caption(act.caption, width), grid])
        layout.append((act.name, y, y + block.shape[0]))
        rows.append(block)
        y += block.shape[0]
    return np.vstack(rows), layout
