"""How blurred is a merge? A small network that estimates the burst's lens blur from it.

A refiner that reads the lens blur (``GeneratorConfig.blur_input``) knows how much to deblur:
a sharp lens (or a simple simulated burst, area sampling only) wants little, a soft phone lens
much. The blur is a property of the camera, one number an image: the sigma, in frame pixels, of
a Gaussian point spread function before the sensor's pixels (the camera simulator's ``blur``,
``burstsr.burst.camera``). Users who know their lens can give it (``--lens-blur``); otherwise
this estimator reads it off the merge.

The estimator is fully convolutional: the merge (and its confidence map) folded to the frames'
grid, five 3x3 convolutions (two of stride 2), then two 1x1 heads at 1/4 of the frames' size:
a local estimate (softplus, >= 0) and a weight logit. The image's estimate is the local
estimates averaged with the softmax of the weights over the whole image, so flat areas, which
show no blur, can hand the decision to edges and texture, which do. Trained with the L1 loss
on random crops of pairs whose blur is known (``synth`` writes it into ``meta.json``:
:func:`burstsr.refiner.data.scene_blur`).
"""

from __future__ import annotations

import io
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from burstsr.errors import CheckpointError, InputError
from burstsr.io import write_bytes
from burstsr.io.confidence import confidence_channel
from burstsr.io.image import unit_float
from burstsr.refiner.config import BlurTrainConfig
from burstsr.refiner.data import PairDataset, scene_blur
from burstsr.refiner.registry import WEIGHTS
from burstsr.refiner.validate import validation_pairs

log = logging.getLogger(__name__)

FORMAT = "burstsr-blur-estimator"
VERSION = 1
SHIPPED_ESTIMATOR = WEIGHTS / "blur_x4.pt"  # for merges on the x4 grid (the burst model's)
TILE = 512  # merge pixels a pass of the estimator reads at most (whole images in tiles)
MAX_TILES = 48  # tiles read from a large image (12 MP), spread evenly over it


@dataclass(frozen=True)
class BlurEstimatorConfig:
    """Architecture of the estimator (saved with it)."""

    unshuffle: int = 4  # the merge's grid over the frames' (fold by this first)
    confidence: bool = True  # read the merge's confidence map too
    channels: int = 32

    @property
    def in_channels(self) -> int:
        return (3 + int(self.confidence)) * self.unshuffle**2


class BlurEstimator(nn.Module):
    """Merge ``(N, 3 [+1], H, W)`` -> local estimates and weight logits, each ``(N, 1, H/4u,
    W/4u)`` (``u`` the unshuffle); :func:`pool` turns them into one blur an image."""

    def __init__(self, config: BlurEstimatorConfig = BlurEstimatorConfig()) -> None:
        super().__init__()
        self.config = config
        c, u = config.channels, config.unshuffle
        self.fold = nn.PixelUnshuffle(u) if u > 1 else nn.Identity()
        self.features = nn.Sequential(
            nn.Conv2d(config.in_channels, c, 3, padding=1),
            nn.PReLU(c),
            nn.Conv2d(c, c, 3, stride=2, padding=1),
            nn.PReLU(c),
            nn.Conv2d(c, 2 * c, 3, padding=1),
            nn.PReLU(2 * c),
            nn.Conv2d(2 * c, 2 * c, 3, stride=2, padding=1),
            nn.PReLU(2 * c),
            nn.Conv2d(2 * c, 2 * c, 3, padding=1),
            nn.PReLU(2 * c),
        )
        self.estimate = nn.Conv2d(2 * c, 1, 1)
        self.weight = nn.Conv2d(2 * c, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u, (h, w) = self.config.unshuffle, x.shape[-2:]
        if h % u or w % u:
            x = F.pad(x, (0, -w % u, 0, -h % u), mode="replicate")
        x = torch.cat([local_contrast(x[:, :3], 4 * u + 1), x[:, 3:]], dim=1)
        f = self.features(self.fold(x))
        return F.softplus(self.estimate(f)), self.weight(f)


def local_contrast(rgb: torch.Tensor, window: int) -> torch.Tensor:
    """``rgb`` less its local mean, over its local spread (``window`` pixels square; the
    luma-free detail at unit contrast): how sharp an edge is, not how strong, and not what
    colour or brightness the area has."""
    pad = window // 2
    mean = F.avg_pool2d(rgb, window, 1, pad, count_include_pad=False)
    detail = rgb - mean
    spread = F.avg_pool2d(detail * detail, window, 1, pad, count_include_pad=False)
    return detail / (spread.mean(1, keepdim=True).sqrt() + 0.01)


def pool(estimates: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """One blur per image: the local ``estimates`` averaged with the softmax of ``logits`` over
    each image's positions (both ``(N, 1, h, w)``) -> ``(N,)``."""
    weights = torch.softmax(logits.flatten(1), dim=1)
    return (weights * estimates.flatten(1)).sum(1)


def estimator_input(image: np.ndarray, confidence: np.ndarray | None, config) -> np.ndarray:
    """The estimator's input for a merge ``image`` (float ``(H, W, 3)`` in [0, 1]): with
    ``config.confidence`` the confidence channel joined (an evenly sampled 8-frame burst when
    ``confidence`` is None)."""
    if not config.confidence:
        return image
    if confidence is None:
        confidence = np.full(image.shape[:2], 8.0, np.float32)
    return np.concatenate([image, confidence_channel(confidence)], axis=2)


@torch.inference_mode()
def estimate_blur(
    estimator: BlurEstimator, image: np.ndarray, confidence: np.ndarray | None = None
) -> float:
    """The lens blur (frame pixels) of a merge ``image`` (``(H, W, 3)``: float in [0, 1], or
    uint8 / uint16 samples), read in tiles of :data:`TILE` pixels (at most :data:`MAX_TILES`
    of them, spread evenly over a large image); every tile's local estimates are pooled
    together.

    Raises:
        InputError: an image too small to hold one position of the estimator.
    """
    device = next(estimator.parameters()).device
    h, w = image.shape[:2]
    starts = [(y, x) for y in range(0, h, TILE) for x in range(0, w, TILE)]
    if len(starts) > MAX_TILES:
        starts = [starts[i] for i in np.linspace(0, len(starts) - 1, MAX_TILES).round().astype(int)]
    estimates, logits = [], []
    for y, x in starts:
        part = unit_float(image[y : y + TILE, x : x + TILE, :3])
        if min(part.shape[:2]) < 4 * estimator.config.unshuffle:
            continue  # a sliver at the edge: nothing the others do not show
        conf = None if confidence is None else confidence[y : y + TILE, x : x + TILE]
        x_in = estimator_input(part, conf, estimator.config)
        tensor = torch.from_numpy(np.ascontiguousarray(x_in)).permute(2, 0, 1)[None]
        e, g = estimator(tensor.to(device))
        estimates.append(e.flatten())
        logits.append(g.flatten())
    if not estimates:
        raise InputError(f"image {w}x{h}: too small to estimate its lens blur; give --lens-blur")
    return float(pool(torch.cat(estimates)[None], torch.cat(logits)[None]))


def blur_for(
    generator: nn.Module,
    image: np.ndarray,
    confidence: np.ndarray | None = None,
    estimator: str | os.PathLike | None = None,
) -> float:
    """The lens blur to give ``generator`` (a model with ``config.blur_input``) for the merge
    ``image``: :func:`estimate_blur` with the ``estimator`` for the model's merge grid (default:
    the shipped one, :data:`SHIPPED_ESTIMATOR`).

    Raises:
        CheckpointError: no estimator there, or one for another merge grid.
    """
    estimator = SHIPPED_ESTIMATOR if estimator is None else estimator
    found = load_estimator(estimator).to(next(generator.parameters()).device)
    if found.config.unshuffle != generator.config.unshuffle:
        raise CheckpointError(
            f"{estimator}: a blur estimator for merges on the x{found.config.unshuffle} grid; "
            f"the model reads the x{generator.config.unshuffle} grid (give --lens-blur)"
        )
    value = estimate_blur(found, image, confidence)
    log.info("lens blur estimated from the merge: %.2f frame pixels (--lens-blur sets it)", value)
    return value


# --- checkpoints ---------------------------------------------------------------------------------


def save_estimator(path: str | os.PathLike, estimator: BlurEstimator, metrics: dict) -> Path:
    """Write the estimator (config, weights, metrics) to ``path`` and its ``.json`` beside it."""
    path = Path(path)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": asdict(estimator.config),
        "metrics": metrics,
        "state_dict": {k: v.detach().cpu().clone() for k, v in estimator.state_dict().items()},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_bytes(path, buffer.getvalue())
    info = {k: payload[k] for k in ("format", "version", "config", "metrics")}
    write_bytes(path.with_suffix(".json"), (json.dumps(info, indent=2) + "\n").encode())
    return path


def load_estimator(path: str | os.PathLike = SHIPPED_ESTIMATOR) -> BlurEstimator:
    """Load an estimator written by :func:`save_estimator` (no code unpickled), in eval mode.

    Raises:
        CheckpointError: missing, corrupt, or not a blur estimator.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "estimator.pt"
    if not path.is_file():
        raise CheckpointError(f"{path}: no such blur estimator")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, bad pickle: all "corrupt"
        raise CheckpointError(f"{path}: corrupt or truncated ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a burstsr blur estimator")
    try:
        estimator = BlurEstimator(BlurEstimatorConfig(**data["config"]))
        estimator.load_state_dict(data["state_dict"])
    except (KeyError, TypeError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"{path}: weights do not fit ({first})") from None
    return estimator.eval()


# --- training -----------------------------------------------------------------------------------


def train_estimator(
    config: BlurTrainConfig, progress: Callable[[int, int, dict], None] | None = None
) -> dict:
    """Train a blur estimator on ``config.pairs`` (merges on the output's grid, a multiple of
    the frames'; each scene's blur and grid from its ``meta.json``), keep the one with the
    lowest validation error (mean absolute error of the whole-image estimate, frame pixels,
    over held-out scenes) as ``OUT/estimator.pt``; returns its metrics.

    Raises:
        InputError: a bad pairs folder, pairs without a recorded blur, or none large enough.
    """
    train_pairs, val_pairs, scale = validation_pairs(
        config.pairs, None, config.val_fraction, config.seed
    )
    if scale != 1:
        raise InputError(
            f"{config.pairs}: the estimator reads merges on the output's grid (synth "
            f"--merge-scale equal to --scale); these are x{scale} of their merge"
        )
    grid = merge_grid(train_pairs + val_pairs)
    large = [p for p in train_pairs if min(_size(p.merged)) >= config.patch]
    if not large:
        raise InputError(f"--patch {config.patch}: larger than every training scene")
    kinds = dict(align=grid, confidence=config.confidence, blur=True)
    data = PairDataset(large, 1, config.patch, **kinds)
    torch.manual_seed(config.seed)
    estimator = BlurEstimator(BlurEstimatorConfig(grid, config.confidence, config.channels))
    opt = torch.optim.Adam(estimator.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, config.steps)
    crops = torch.Generator().manual_seed(config.seed)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    best: dict = {"val_mae": float("inf")}
    history = []
    started = time.monotonic()
    for step in range(1, config.steps + 1):
        merged, _ = data.batch(config.batch, crops)
        target = merged[:, -1, 0, 0]
        loss = F.l1_loss(pool(*estimator(merged[:, :-1])), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % config.val_every == 0 or step == config.steps:
            estimator.eval()
            metrics = {"step": step, "loss": loss.item(), **_validate(estimator, val_pairs)}
            metrics["minutes"] = (time.monotonic() - started) / 60
            estimator.train()
            history.append(metrics)
            log.info("blur estimator step %d: %s", step, metrics)
            if metrics["val_mae"] <= best["val_mae"]:
                best = metrics
                save_estimator(out / "estimator.pt", estimator, metrics)
        if progress is not None:
            progress(step, config.steps, {"l1": loss.item()})
    write_bytes(out / "history.json", (json.dumps(history, indent=1) + "\n").encode())
    return best


def merge_grid(pairs: list) -> int:
    """The grid the pairs were merged on, over their frames' (``meta.json``'s
    ``merge_scale``; one for all).

    Raises:
        InputError: a scene that does not say, or scenes of different grids.
    """
    grids = set()
    for pair in pairs:
        meta = pair.merged.parent / "meta.json"
        try:
            grids.add(int(json.loads(meta.read_text())["merge_scale"]))
        except (OSError, ValueError, KeyError, TypeError):
            raise InputError(
                f"{meta}: no merge_scale recorded (make the pairs with synth)"
            ) from None
    if len(grids) != 1:
        raise InputError(f"pairs merged on different grids ({sorted(grids)}); use one kind")
    (grid,) = grids
    if grid not in (1, 2, 4):
        raise InputError(f"pairs merged on a x{grid} grid; the estimator reads x1, x2 or x4")
    return grid


def _size(path: Path) -> tuple[int, int]:
    from burstsr.io import image_size

    return image_size(path)


def _validate(estimator: BlurEstimator, pairs: list) -> dict:
    """Whole-image estimates of the held-out scenes against their recorded blur."""
    from burstsr.io import read_image
    from burstsr.io.confidence import read_confidence

    if not pairs:
        return {"val_mae": float("nan")}
    errors = []
    for pair in pairs:
        image = read_image(pair.merged).pixels
        conf_path = pair.merged.parent / "confidence.png"
        conf = read_confidence(conf_path) if conf_path.is_file() else None
        errors.append(abs(estimate_blur(estimator, image, conf) - scene_blur(pair)))
    return {"val_mae": float(np.mean(errors)), "val_max_error": float(np.max(errors))}
