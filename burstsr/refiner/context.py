"""How much context a tile needs: the distance past which the input no longer changes a
model's output, measured, instead of the receptive radius its layers could reach.

A 24-block SRResNet could see 56 body pixels away (226 pixels of a x4-grid merge), but what
it makes of a pixel depends on the input beyond a fraction of that by far less than a 16-bit
level: the deeper layers' reach fades out (the "effective receptive field" of W. Luo et al.,
NeurIPS 2016). A tile with the full radius as context costs twice its own area at the default
tile size; with the context it needs, about one and a half.

:func:`needed_context` runs the model on a test pattern whole, then on crops of it around a
central block, each with less context, as a tile would be run (cut at the crop's edge, where
the network's zero padding applies), and keeps the smallest context whose block differs from
the whole run by at most :data:`TOLERANCE` anywhere, plus a margin. The pattern is textured at
every scale, with edges and saturated areas, so that it is harder than photographs; on real
merges the error measured this way is smaller still (docs/benchmarks.md).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from burstsr.io.confidence import confidence_channel
from burstsr.refiner.networks import Generator, weights_version

TOLERANCE = 1e-5  # of the full range: 0.65 of a 16-bit level, 1/400 of an 8-bit one
MARGIN = 1.25  # the context used, over the one measured


def whole_blocks(n: int, u: int) -> int:
    """``n`` rounded up to whole ``u``-pixel blocks."""
    return -(-n // u) * u


def test_pattern(size: int, channels: int, seed: int = 0) -> np.ndarray:
    """``float32 (size, size, channels)`` in [0, 1]: noise blurred at several scales, hard
    edges and clipped areas (the last channel, for a model that reads the merge's confidence,
    a confidence map of 1 to 16 frames)."""
    rng = np.random.default_rng(seed)
    image = np.zeros((size, size, 3), np.float32)
    for sigma, weight in ((0.0, 0.15), (1.0, 0.3), (4.0, 0.5), (16.0, 0.8)):
        noise = rng.standard_normal((size, size, 3)).astype(np.float32)
        if sigma:
            noise = cv2.GaussianBlur(noise, (0, 0), sigma) * sigma  # about unit spread again
        image += weight * noise
    edges = np.sign(rng.standard_normal(3)) * (np.arange(size) % 40 < 20)[None, :, None]
    image = np.clip(0.5 + 0.25 * image + 0.2 * edges, 0.0, 1.0).astype(np.float32)
    if channels == 3:
        return image
    frames = rng.integers(1, 17, (size // 8 + 1, size // 8 + 1)).astype(np.float32)
    frames = cv2.resize(frames, (size, size), interpolation=cv2.INTER_NEAREST)
    return np.concatenate([image, confidence_channel(frames)], axis=2)


@torch.inference_mode()
def measure_context(generator: Generator, tolerance: float = TOLERANCE) -> tuple[int, float]:
    """The smallest context (input pixels, whole ``unshuffle`` blocks) with which a tile's
    output stays within ``tolerance`` of the whole image's, on :func:`test_pattern`, and the
    largest difference it leaves. At most the receptive radius in whole blocks (which leaves
    none). Measured in full precision (TF32 off on CUDA, whose rounding would sit near the
    tolerance); ``generator`` is left in the mode it was in."""
    was_training = generator.training
    generator.eval()
    try:
        with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            return _measure(generator, tolerance)
    finally:
        generator.train(was_training)


def _measure(generator: Generator, tolerance: float) -> tuple[int, float]:
    u, s = generator.config.unshuffle, generator.config.scale
    full = whole_blocks(generator.receptive_radius(), u)
    core = 8 * u
    device = next(generator.parameters()).device
    pattern = test_pattern(2 * full + core, generator.config.in_channels)
    x = torch.from_numpy(pattern).permute(2, 0, 1)[None].to(device)
    whole = generator(x)[..., full * s : (full + core) * s, full * s : (full + core) * s]

    def error(pad: int) -> float:
        crop = x[..., full - pad : full + core + pad, full - pad : full + core + pad]
        out = generator(crop)[..., pad * s : (pad + core) * s, pad * s : (pad + core) * s]
        return float((out - whole).abs().max())

    lo, hi = 0, full // u  # in blocks: error(hi * u) == 0; find the least within tolerance
    while lo < hi:
        mid = (lo + hi) // 2
        if error(mid * u) <= tolerance:
            hi = mid
        else:
            lo = mid + 1
    return hi * u, error(hi * u)


def needed_context(generator: Generator) -> int:
    """The context :func:`burstsr.refiner.enhance.enhance_image` gives each tile by default:
    :func:`measure_context` with a margin of :data:`MARGIN`, whole ``unshuffle`` blocks, at
    most the receptive radius in whole blocks. Measured once per model and set of weights
    (under half a second for the shipped models on the CPU), then remembered on the model: in
    place changes to the weights (an optimiser's step, ``load_state_dict``) measure it again;
    replacing a parameter's ``.data`` does not. Weights made under ``torch.inference_mode``
    keep no version, so for them it is measured every time."""
    version = weights_version(generator)
    known = getattr(generator, "_needed_context", None)
    if version is not None and known is not None and known[0] == version:
        return known[1]
    u = generator.config.unshuffle
    measured, _ = measure_context(generator)
    context = min(
        whole_blocks(round(measured * MARGIN), u), whole_blocks(generator.receptive_radius(), u)
    )
    generator._needed_context = (version, context)
    return context
