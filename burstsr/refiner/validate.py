"""Validation during training: which pairs are held out, and how well a model does on them
(PSNR / SSIM on the Y channel, border = the scale from the frames to the output)."""

from __future__ import annotations

import numpy as np
import torch

from burstsr.errors import InputError
from burstsr.metrics import psnr, ssim
from burstsr.refiner.data import Pair, PairDataset, find_pairs, split_pairs
from burstsr.refiner.networks import Generator


def validation_pairs(
    pairs: str, val_dir: str | None, val_fraction: float, seed: int
) -> tuple[list[Pair], list[Pair], int]:
    """(training pairs, validation pairs, scale): the pairs of ``val_dir`` when given, else a
    reproducible ``val_fraction`` of the scenes of ``pairs``."""
    found = find_pairs(pairs)
    if val_dir:
        val = find_pairs(val_dir)
        if val.scale != found.scale:
            raise InputError(
                f"--val-dir {val_dir}: scale x{val.scale} differs from the "
                f"training pairs' x{found.scale}"
            )
        return found.pairs, val.pairs, found.scale
    train_pairs, val_pairs = split_pairs(found.pairs, val_fraction, seed)
    return train_pairs, val_pairs, found.scale


def centre_crop(merged: torch.Tensor, hr: torch.Tensor, size: int, scale: int, align: int) -> tuple:
    """Aligned centre crops (merged, HR) of at most ``size`` HR pixels (0: the whole images);
    the merged crop starts on a multiple of ``align``."""
    if size <= 0:
        return merged, hr
    lh, lw = min(merged.shape[1], size // scale), min(merged.shape[2], size // scale)
    y, x = (
        (merged.shape[1] - lh) // 2 // align * align,
        (merged.shape[2] - lw) // 2 // align * align,
    )
    return (
        merged[:, y : y + lh, x : x + lw],
        hr[:, y * scale : (y + lh) * scale, x * scale : (x + lw) * scale],
    )


@torch.inference_mode()
def validate(model: Generator, data: PairDataset, crop: int, device: torch.device) -> dict:
    """Mean PSNR / SSIM (Y, border = scale) of the model on the validation pairs'
    centre crops of ``crop`` HR pixels (0: whole images)."""
    s, u = data.scale, data.align
    scores_p, scores_s = [], []
    for merged, hr in zip(data.merged, data.hr, strict=True):
        lr_c, hr_c = centre_crop(merged, hr, crop, s, u)
        sr = model(lr_c[None].to(device)).clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy()
        target = hr_c.permute(1, 2, 0).numpy()
        # Border = the scale from the frames to the output (merge grid included).
        scores_p.append(psnr(sr, target, border=s * u, y_channel=True))
        scores_s.append(ssim(sr, target, border=s * u, y_channel=True))
    return {"val_psnr": float(np.mean(scores_p)), "val_ssim": float(np.mean(scores_s))}
