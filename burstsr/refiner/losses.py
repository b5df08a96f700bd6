"""Losses of the refiner: pixel, content (VGG19 features) and adversarial.

The VGG19 feature extractor is built with torchvision's layer indices (``features.0`` is
conv1_1, ``features.34`` conv5_4, ``features.35`` its ReLU), so the standard torchvision ImageNet
``vgg19`` state dict (``vgg19-dcbb9e9d.pth``) loads into it unchanged, from a local file. Nothing
is downloaded. Without a weights file a randomly initialised VGG19 with a fixed seed is used: a
"generic perceptual loss" (Liu et al., "Generic Perceptual Loss for Modeling Structured Output
Dependencies", CVPR 2021), which still measures structure, and burstsr says so once.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from burstsr.errors import CheckpointError
from burstsr.refiner.config import VGG_LAYERS

log = logging.getLogger(__name__)

# torchvision's vgg19 "features": (kind, out_channels) per index; "M" is max pooling.
_VGG19 = [
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    512,
    "M",
]
# Named layers -> index of the ReLU after the conv (torchvision numbering).
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
VGG_FILE = "vgg19-dcbb9e9d.pth"


def _vgg19_features(last: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    c_in = 3
    for spec in _VGG19:
        if spec == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c_in, spec, 3, padding=1), nn.ReLU(inplace=False)]
            c_in = spec
    return nn.Sequential(*layers[: last + 1])


def find_vgg_weights(path: str | os.PathLike | None) -> Path | None:
    """The VGG19 weights file to use: ``path`` if given (it must exist), else torch's hub cache
    copy if it is already there, else None."""
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"--vgg-weights {path}: no such file")
        return path
    cached = Path(torch.hub.get_dir()) / "checkpoints" / VGG_FILE
    return cached if cached.is_file() else None


class ContentLoss(nn.Module):
    """MSE between VGG19 features of output and target (SRGAN's VGG loss).

    Args:
        layer: a key of :data:`VGG_LAYERS` (SRGAN uses ``relu5_4``).
        weights: torchvision ``vgg19`` state dict file, or None for the generic perceptual loss.
    """

    def __init__(self, layer: str = "relu5_4", weights: str | os.PathLike | None = None) -> None:
        super().__init__()
        if layer not in VGG_LAYERS:
            raise ValueError(f"layer must be one of {tuple(VGG_LAYERS)}, got {layer!r}")
        self.features = _vgg19_features(VGG_LAYERS[layer])
        path = find_vgg_weights(weights)
        if path is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                for m in self.features:
                    if isinstance(m, nn.Conv2d):
                        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                        nn.init.zeros_(m.bias)
            log.warning(
                "content loss: no VGG19 weights (--vgg-weights); using a fixed random "
                "VGG19 (generic perceptual loss)"
            )
            self.pretrained = False
        else:
            self._load(path)
            self.pretrained = True
        self.features.requires_grad_(False)
        self.features.eval()
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1))
        # SRGAN rescales the ImageNet VGG's features by 1/12.75. A random VGG's features are far
        # smaller; scale them to unit standard deviation on a fixed smooth random image instead,
        # so the loss keeps its weight against the others.
        self.scale = 1 / 12.75
        if not self.pretrained:
            with torch.random.fork_rng(devices=[]), torch.no_grad():
                torch.manual_seed(1)
                probe = F.interpolate(torch.rand(1, 3, 16, 16), size=96, mode="bicubic")
                self.scale = 1 / float(self.features((probe - self.mean) / self.std).std())

    def _load(self, path: Path) -> None:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(f"{path}: not a readable VGG19 state dict ({exc})") from None
        own = self.features.state_dict()
        picked = {
            k[len("features.") :]: v
            for k, v in state.items()
            if k.startswith("features.") and k[len("features.") :] in own
        }
        if set(picked) != set(own):
            raise CheckpointError(
                f"{path}: not a torchvision vgg19 state dict "
                f"(missing {sorted(set(own) - set(picked))[:3]})"
            )
        self.features.load_state_dict(picked)

    def train(self, mode: bool = True) -> ContentLoss:  # the extractor always stays in eval
        super().train(mode)
        self.features.eval()
        return self

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        def feats(x: torch.Tensor) -> torch.Tensor:
            return self.features((x - self.mean) / self.std) * self.scale

        return F.mse_loss(feats(output), feats(target).detach())


def _phase_means(x: torch.Tensor, period: int) -> torch.Tensor:
    """Per image, the mean high-pass luma (luma minus a Gaussian blur, sigma 2) at each of the
    ``period x period`` pixel phases of ``x`` ``(N, 3, H, W)``: ``(N, period, period)``."""
    y = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    radius = 6
    t = torch.arange(-radius, radius + 1, dtype=y.dtype, device=y.device)
    k = torch.exp(-0.5 * (t / 2.0) ** 2)
    k = k / k.sum()
    blurred = F.pad(y[:, None], (radius,) * 4, mode="reflect")
    blurred = F.conv2d(blurred, k.view(1, 1, 1, -1))
    blurred = F.conv2d(blurred, k.view(1, 1, -1, 1))[:, 0]
    high = y - blurred
    n, h, w = high.shape
    h, w = h // period * period, w // period * period
    return high[:, :h, :w].reshape(n, h // period, period, w // period, period).mean(dim=(1, 3))


def grid_error_loss(output: torch.Tensor, target: torch.Tensor, period: int = 4) -> torch.Tensor:
    """The part of the error locked to the ``period``-pixel output grid: per image, the RMS over
    the phases of the mean high-pass luma of ``output - target`` (in [0, 1] units), averaged
    over the batch. The target's own texture cancels, so even a pattern far under the crop's
    texture is measured; an L1 loss barely sees an offset that small against its errors.
    Crops must start on the grid (the training crops and folds do)."""
    phases = _phase_means(output - target, period)
    return phases.pow(2).mean(dim=(1, 2)).add(1e-12).sqrt().mean()


def periodic_loss(output: torch.Tensor, target: torch.Tensor, period: int = 4) -> torch.Tensor:
    """How much more ``output`` repeats a pattern locked to its ``period``-pixel grid than
    ``target`` does: per image, the RMS over the ``period x period`` phases of the mean high-pass
    luma (luma minus a Gaussian blur, sigma 2), as :func:`burstsr.metrics.periodic_pattern`,
    in [0, 1] units; the loss is its excess over the target's, averaged over the batch. Crops
    must start on the grid (the training crops and folds do)."""

    def score(x: torch.Tensor) -> torch.Tensor:
        return _phase_means(x, period).pow(2).mean(dim=(1, 2)).add(1e-12).sqrt()

    return F.relu(score(output) - score(target)).mean()


def pixel_loss(output: torch.Tensor, target: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """Mean absolute (``l1``) or squared (``mse``) error."""
    if kind == "l1":
        return F.l1_loss(output, target)
    if kind == "mse":
        return F.mse_loss(output, target)
    raise ValueError(f"pixel loss must be l1 or mse, got {kind!r}")


def adversarial_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Binary cross-entropy with logits against the label ``real``."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def relativistic_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, *, for_generator: bool
) -> torch.Tensor:
    """Relativistic average GAN loss (Jolicoeur-Martineau, ICLR 2019; ESRGAN's): the
    discriminator estimates whether a real patch is more realistic than the average fake one,
    and a fake one less than the average real one; the generator is trained on the reverse, so
    it learns from the real images' logits as well as its own."""
    real_rel = real_logits - fake_logits.mean()
    fake_rel = fake_logits - real_logits.mean()
    real_is, fake_is = (False, True) if for_generator else (True, False)
    return 0.5 * (adversarial_loss(real_rel, real_is) + adversarial_loss(fake_rel, fake_is))
