"""The refiner's networks: an SRResNet generator and an SRGAN discriminator.

Reference: C. Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network", CVPR 2017 (SRResNet and SRGAN).

The generator follows SRResNet: a 9x9 conv + PReLU head; ``blocks`` residual blocks
(conv-BN-PReLU-conv-BN + skip); conv-BN and a skip around the whole body; PixelShuffle stages
for the scale (x2 stages for 2, 4 and 8, one x3 stage for 3); a 9x9 output conv. One addition:
the bicubic upscaling of the input is added to the output (``image_skip``), so the network
learns only the missing detail, which trains faster and keeps colours exactly where the
network has nothing to add.

A second addition for merges on a finer grid (``burstsr merge --scale N``): with ``unshuffle``
N the input is folded into ``3 * N * N`` channels at 1/N of its size (PixelUnshuffle), the body
runs at that size, and the upsampling stages unfold it by ``N * scale``. The network sees every
fine-grid sample the burst put there, at the cost of a network on the frames' own grid.

For the small coarse networks of detail routing (``burstsr.refiner.route``), the head's kernel
can be smaller and the upsampling can be ESPCN's sub-pixel convolution (``upsampler``
"subpixel"): no layer then runs at the output size, where most of a small network's time goes.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from burstsr.burst.superres import KERNELS

SCALES = (1, 2, 3, 4, 8)
UNSHUFFLES = (1, 2, 4)
UPSAMPLERS = ("stages", "subpixel")


@dataclass(frozen=True)
class GeneratorConfig:
    """Architecture of the generator (saved with every checkpoint)."""

    scale: int = 4
    channels: int = 64
    blocks: int = 16
    batch_norm: bool = True
    image_skip: bool = True
    unshuffle: int = 1  # fold the input by this factor first (for merges on a finer grid)
    # The kernel of the finer-grid merge it was trained on (burst.superres); ``burstsr run``
    # merges with it. Earlier checkpoints, which do not say, were trained on "gaussian".
    merge_kernel: str = "gaussian"
    # Read the merge's confidence map as a 4th input channel (see ``confidence_channel``).
    confidence: bool = False
    # > 0: an any-scale model (burstsr.refiner.anyscale): the body's features become a latent
    # field of this many channels, rendered at any size by a coordinate decoder (an MLP of
    # ``decoder_layers`` layers, ``decoder_width`` wide) instead of the PixelShuffle stages.
    latent: int = 0
    decoder_width: int = 128
    decoder_layers: int = 4
    head_kernel: int = 9
    # How the body's features become the output: "stages" (SRResNet's PixelShuffle stages, a
    # conv and PReLU each, then a 9x9 conv at the output size) or "subpixel" (one 3x3 conv at
    # the body's size to 3 x f x f channels and one PixelShuffle: ESPCN, W. Shi et al., CVPR
    # 2016; no layer runs at the output size: the cheap coarse networks of detail routing).
    upsampler: str = "stages"

    @property
    def in_channels(self) -> int:
        return 4 if self.confidence else 3

    def merge_reads(self) -> dict:
        """The merge options a model of finer-grid merges reads (``MergeConfig`` fields: its
        grid and kernel); empty for a model of frames'-grid merges."""
        return {"scale": self.unshuffle, "kernel": self.merge_kernel} if self.unshuffle > 1 else {}

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {self.scale}")
        if self.unshuffle not in UNSHUFFLES:
            raise ValueError(f"unshuffle must be one of {UNSHUFFLES}, got {self.unshuffle}")
        if self.merge_kernel not in KERNELS:
            raise ValueError(f"merge_kernel must be adaptive or gaussian, got {self.merge_kernel}")
        if self.channels < 1 or self.blocks < 0:
            raise ValueError("channels must be >= 1 and blocks >= 0")
        if self.head_kernel not in (1, 3, 5, 7, 9):
            raise ValueError(f"head_kernel must be 1, 3, 5, 7 or 9, got {self.head_kernel}")
        if self.upsampler not in UPSAMPLERS:
            raise ValueError(f"upsampler must be one of {UPSAMPLERS}, got {self.upsampler!r}")
        if self.latent < 0 or self.decoder_width < 1 or self.decoder_layers < 1:
            raise ValueError("latent must be >= 0, decoder width and layers >= 1")

    @property
    def any_scale(self) -> bool:
        """Whether the model renders any output size (a latent field and a coordinate decoder)."""
        return self.latent > 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Architecture of the discriminator."""

    channels: int = 64
    stages: int = 4  # each: conv-BN-LReLU, then a stride-2 conv-BN-LReLU; channels double
    dense: int = 1024
    kind: str = "srgan"  # srgan: one logit per patch | patch: spectral-norm convs, a logit map


def _conv(c_in: int, c_out: int, k: int = 3, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2)


class ResidualBlock(nn.Module):
    """conv-BN-PReLU-conv-BN, plus the input."""

    def __init__(self, channels: int, batch_norm: bool) -> None:
        super().__init__()
        norm = (lambda: nn.BatchNorm2d(channels)) if batch_norm else nn.Identity
        self.body = nn.Sequential(
            _conv(channels, channels),
            norm(),
            nn.PReLU(channels),
            _conv(channels, channels),
            norm(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)

    @torch.no_grad()
    def make_identity(self) -> None:
        """Zero the block's last scaling layer (BN, or the conv without BN): ``x -> x``, and the
        zeroed layer still gets gradients, so the block learns from there."""
        last = [m for m in self.body if isinstance(m, nn.Conv2d | nn.BatchNorm2d)][-1]
        last.weight.zero_()
        if last.bias is not None:
            last.bias.zero_()


# Inference runs the full-resolution end of the generator in strips of about this many output
# pixels (32 channels: 16 MB a tensor), with this many rows of context at the body's size (as
# many as they see: a 3x3 conv at each size and the 9x9 output conv, 4 rows at most, at x1).
UNFOLD_PIXELS = 2**17
UNFOLD_CONTEXT = 4


def _factors(n: int) -> list[int]:
    """``n`` as PixelShuffle stages: x3 stages first, then x2 stages (12 -> [3, 2, 2])."""
    factors = []
    while n % 3 == 0:
        factors, n = factors + [3], n // 3
    return factors + [2] * int(math.log2(n))


@lru_cache
def _fold_index(f: int, k: int) -> tuple[np.ndarray, int]:
    """For :func:`fold_output_conv`: where each tap of the folded kernel reads in the flattened
    ``k x k`` kernel (index ``k * k`` points at a zero appended to it), indexed
    ``[a, b, a2, b2, ky, kx]`` (output phase, input phase, tap); and the folded kernel's
    radius."""
    r = k // 2
    radius = (f - 1 + r) // f  # the taps reach -radius..radius cells (symmetric for odd k)
    n = 2 * radius + 1
    index = np.full((f, f, f, f, n, n), k * k, np.int64)
    for a, b, a2, b2 in np.ndindex(f, f, f, f):
        for ky, kx in np.ndindex(n, n):
            dy, dx = f * (ky - radius) + a2 - a, f * (kx - radius) + b2 - b
            if abs(dy) <= r and abs(dx) <= r:
                index[a, b, a2, b2, ky, kx] = (dy + r) * k + dx + r
    index.flags.writeable = False  # cached: shared by every call
    return index, radius


def fold_output_conv(
    weight: torch.Tensor, bias: torch.Tensor, f: int
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """A ``k x k`` conv (``weight`` ``(O, C, k, k)``, zero padding ``k // 2``) applied after
    ``PixelShuffle(f)``, as a conv applied before it: ``conv(shuffle(x), weight) ==
    shuffle(conv(x, folded))``, exactly (zero padding at either size is the same zeros).

    Output pixel ``(f*p + a, f*q + b)`` reads input pixel ``(f*p + a + dy, ...)``, which the
    shuffle takes from channel phase ``a2 = (a + dy) mod f`` of cell ``p + (a + dy) // f``; so
    the folded conv has ``O * f * f`` outputs (one per output phase), ``C * f * f`` inputs and a
    ``(2 * radius + 1)``-tap kernel over the cells. Returns the folded weight, its bias and
    padding ``radius``."""
    o, c, k, _ = weight.shape
    index, radius = _fold_index(f, k)
    flat = torch.cat([weight.reshape(o, c, k * k), weight.new_zeros(o, c, 1)], dim=2)
    # A tensor made here, in the caller's mode (a cached one made under inference_mode could
    # not be used where gradients are taken).
    folded = flat[:, :, torch.tensor(index, device=weight.device)]  # (o, c, a, b, a2, b2, ky, kx)
    folded = folded.permute(0, 2, 3, 1, 4, 5, 6, 7).reshape(o * f * f, c * f * f, *index.shape[-2:])
    return folded, bias.repeat_interleave(f * f), radius


def weights_version(network: nn.Module) -> tuple[int, ...] | None:
    """A key that changes whenever ``network``'s weights change in place (an optimiser's step,
    ``load_state_dict``), for what is derived from them and kept; None for weights made under
    ``torch.inference_mode``, which keep no version (derive again every time)."""
    params = list(network.parameters())
    if any(p.is_inference() for p in params):
        return None
    return tuple(p._version for p in params)


def fold_batch_norm(network: nn.Module) -> nn.Module:
    """A copy of ``network`` for inference, every ``BatchNorm2d`` that follows a ``Conv2d`` in
    a ``Sequential`` folded into that convolution (``Identity`` in its place): in ``eval()``
    mode a batch norm is a fixed scale and shift per channel, so the folded convolution gives
    the same numbers (within float rounding) without a pass over the activations per batch
    norm. The copy is in ``eval()`` mode; ``network`` is left as it was. Not for training: the
    batch norms' statistics are gone from the copy."""
    folded = copy.deepcopy(network).eval()
    with torch.no_grad():
        for module in folded.modules():
            if not isinstance(module, nn.Sequential):
                continue
            for i in range(len(module) - 1):
                conv, norm = module[i], module[i + 1]
                if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                    module[i] = fuse_conv_bn_eval(conv, norm)
                    module[i + 1] = nn.Identity()
    return folded


class Generator(nn.Module):
    """SRResNet: ``(N, 3, h, w)`` in [0, 1] -> ``(N, 3, h*scale, w*scale)``; with
    ``config.confidence`` the input is ``(N, 4, h, w)``: RGB and the merge's confidence map
    (:func:`burstsr.io.confidence.confidence_channel`)."""

    def __init__(self, config: GeneratorConfig = GeneratorConfig()) -> None:
        super().__init__()
        self.config = config
        c, u = config.channels, config.unshuffle
        self.fold = nn.PixelUnshuffle(u) if u > 1 else nn.Identity()
        self.head = nn.Sequential(
            _conv(config.in_channels * u * u, c, config.head_kernel), nn.PReLU(c)
        )
        self.body = nn.Sequential(
            *[ResidualBlock(c, config.batch_norm) for _ in range(config.blocks)]
        )
        self.body_tail = nn.Sequential(
            _conv(c, c), nn.BatchNorm2d(c) if config.batch_norm else nn.Identity()
        )
        stages, factor = [], config.scale * u
        if config.upsampler == "subpixel":  # nothing at the output size but the shuffle
            self.upsample = nn.Sequential()
            self.tail = nn.Sequential(_conv(c, 3 * factor * factor), nn.PixelShuffle(factor))
            return
        for f in _factors(factor):
            stages += [_conv(c, c * f * f), nn.PixelShuffle(f), nn.PReLU(c)]
        self.upsample = nn.Sequential(*stages)
        self.tail = _conv(c, 3, 9)

    def pad_to_blocks(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` with its far edges replicated out to whole ``unshuffle`` x ``unshuffle`` blocks
        (what the forward pass folds; its output is cropped back to ``x``'s size x scale)."""
        u, (h, w) = self.config.unshuffle, x.shape[-2:]
        return F.pad(x, (0, -w % u, 0, -h % u), mode="replicate") if h % u or w % u else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, (h, w) = self.config.unshuffle, x.shape[-2:]
        if h % u or w % u:  # fold whole blocks: pad the far edges, crop them after
            s = self.config.scale
            return self.forward(self.pad_to_blocks(x))[..., : h * s, : w * s]
        features = self.head(self.fold(x))
        features = features + self.body_tail(self.body(features))
        out = self._unfold(features)
        if self.config.image_skip:
            scale, rgb = self.config.scale, x[:, :3]
            base = (
                rgb
                if scale == 1
                else F.interpolate(rgb, scale_factor=scale, mode="bicubic", align_corners=False)
            )
            out = out + base
        return out

    def _unfold(self, features: torch.Tensor) -> torch.Tensor:
        """The upsampling stages and the output conv (folded: :meth:`_render`). In inference on
        a large input they run on strips of ``features`` with :data:`UNFOLD_CONTEXT` rows of
        context (more than they see), so only one strip's full-resolution activations are in
        memory at a time; the result is the same as in one pass."""
        f = self.config.scale * self.config.unshuffle
        n, _, h, w = features.shape
        rows = max(1, UNFOLD_PIXELS // (n * w * f * f))
        render = self._render if self._can_fold() else lambda x: self.tail(self.upsample(x))
        if self.training or torch.is_grad_enabled() or rows >= h:
            return render(features)
        out = None  # filled strip by strip: no list of strips (with their context) to join
        for y0 in range(0, h, rows):
            y1 = min(y0 + rows, h)
            c0, c1 = max(y0 - UNFOLD_CONTEXT, 0), min(y1 + UNFOLD_CONTEXT, h)
            strip = render(features[:, :, c0:c1])[:, :, (y0 - c0) * f : (y1 - c0) * f]
            if out is None:
                out = strip.new_empty((n, strip.shape[1], h * f, strip.shape[3]))
            out[:, :, y0 * f : y1 * f] = strip
            del strip
        return out

    def _can_fold(self) -> bool:
        """Whether :meth:`_render` may stand in for the last stage and the output conv: not
        while a hook (``burstsr inspect``) watches those layers, which it skips."""
        if len(self.upsample) < 3:  # x1 without unshuffle: no PixelShuffle to fold into
            return False
        watched = [*self.upsample[-3:], self.tail]
        return not any(m._forward_hooks or m._forward_pre_hooks for m in watched)

    def _render(self, features: torch.Tensor) -> torch.Tensor:
        """``tail(upsample(features))``, with the 9x9 output conv moved before the last
        PixelShuffle (:func:`fold_output_conv`): the same numbers, in under half the time on the
        CPU, where a conv with 3 output channels at full resolution uses the SIMD lanes badly."""
        *stages, conv, shuffle, prelu = self.upsample
        for stage in stages:
            features = stage(features)
        f = shuffle.upscale_factor
        slope = prelu.weight.repeat_interleave(f * f) if prelu.weight.numel() > 1 else prelu.weight
        folded = F.prelu(conv(features), slope)  # PReLU per channel: the same before the shuffle
        weight, bias, pad = fold_output_conv(self.tail.weight, self.tail.bias, f)
        return F.pixel_shuffle(F.conv2d(folded, weight, bias, padding=pad), f)

    def receptive_radius(self) -> int:
        """How far (input pixels) an output pixel sees: the context a tile needs around it."""
        u = self.config.unshuffle
        radius = self.config.head_kernel // 2 + 2 * len(self.body) + 1  # at the body's size
        if self.config.upsampler == "subpixel":
            radius += 1  # the 3x3 conv before the shuffle
        else:
            radius += len(self.upsample) // 3 + math.ceil(4 / (self.config.scale * u))
        return radius * u + (2 if self.config.image_skip else 0)


class Discriminator(nn.Module):
    """SRGAN discriminator: patch -> one logit ("real"). Any patch size >= 2**stages.

    ``kind="patch"``: the same conv stack with spectral normalisation instead of batch norm and
    no dense head: a map of logits, one per receptive field (about 2**stages * 6 px), so the
    discriminator judges local texture, and its Lipschitz bound keeps it from winning outright
    on a small budget (Miyato et al., ICLR 2018; the PatchGAN of Isola et al., CVPR 2017).
    """

    def __init__(self, config: DiscriminatorConfig = DiscriminatorConfig()) -> None:
        super().__init__()
        self.kind = config.kind
        if config.kind == "patch":
            self._build_patch(config)
            return
        if config.kind != "srgan":
            raise ValueError(f"discriminator kind must be srgan or patch, got {config.kind!r}")
        c = config.channels
        layers: list[nn.Module] = [_conv(3, c), nn.LeakyReLU(0.2)]
        layers += [_conv(c, c, stride=2), nn.BatchNorm2d(c), nn.LeakyReLU(0.2)]
        for _ in range(config.stages - 1):
            layers += [_conv(c, 2 * c), nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2)]
            layers += [_conv(2 * c, 2 * c, stride=2), nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2)]
            c *= 2
        self.features = nn.Sequential(*layers)
        # Global average pooling instead of SRGAN's flatten: any patch size works.
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(c, config.dense),
            nn.LeakyReLU(0.2),
            nn.Linear(config.dense, 1),
        )

    def _build_patch(self, config: DiscriminatorConfig) -> None:
        sn = nn.utils.parametrizations.spectral_norm
        c = config.channels
        layers: list[nn.Module] = [sn(_conv(3, c)), nn.LeakyReLU(0.2)]
        for _ in range(config.stages - 1):
            layers += [sn(_conv(c, 2 * c, stride=2)), nn.LeakyReLU(0.2)]
            layers += [sn(_conv(2 * c, 2 * c)), nn.LeakyReLU(0.2)]
            c *= 2
        self.features = nn.Sequential(*layers)
        self.classifier = sn(nn.Conv2d(c, 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build_generator(config: GeneratorConfig) -> nn.Module:
    """The generator ``config`` describes: an SRResNet :class:`Generator`, or with
    ``config.latent`` an :class:`~burstsr.refiner.anyscale.AnyScaleGenerator`."""
    if config.any_scale:
        from burstsr.refiner.anyscale import AnyScaleGenerator

        return AnyScaleGenerator(config)
    return Generator(config)
