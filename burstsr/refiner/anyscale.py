"""Any output scale: a VAE encoder that turns the merge into a latent field, and a coordinate
decoder that renders the colour at any continuous position from the latents around it.

References: Y. Chen, S. Liu, X. Wang, "Learning Continuous Image Representation with Local
Implicit Image Function" (LIIF), CVPR 2021 (an MLP conditioned on local features, the local
ensemble, the cell size as an input); D. Kingma, M. Welling, "Auto-Encoding Variational Bayes",
ICLR 2014 (the latent's mean and variance, the reparametrisation trick).

- **Encoder**: SRResNet's head and body (the same layers and names as
  :class:`~burstsr.refiner.networks.Generator`'s, so ``burstsr train --init fidelity`` starts it
  from the fidelity model's features), then two 3x3 convolutions: the mean and the
  log-variance of a ``latent``-channel Gaussian at every input pixel. Training draws the latent
  from it (mean + standard deviation x noise); inference reads the mean, or with ``--sample``
  draws from it (several plausible restorations of what the merge did not determine).
- **Decoder** (CPPN-style: a network of coordinates): an output pixel at the continuous
  position ``(y, x)`` (input pixels, pixel centres at ``i + 0.5``), whose cell is ``(ch, cw)``
  input pixels (input size / output size), asks each of its 4 nearest latent positions: an MLP
  reads that latent's 3x3 neighbourhood, the offset ``(dy, dx)`` from its centre, the distance
  ``sqrt(dy^2 + dx^2)`` and the cell, and returns a colour; the 4 answers are blended with
  bilinear weights (LIIF's local ensemble, so the image is continuous across latent cells). The
  bicubic interpolation of the input at ``(y, x)`` is added (the image skip), so the network
  learns only the detail.

One network renders every size: :meth:`AnyScaleGenerator.render` takes the output size; the
plain ``forward`` renders at ``config.scale`` (x4), so validation, tiles and ``enhance`` treat
it like the fixed-scale models at x4. Rendering in tiles is exact when each tile has the
receptive radius as context (:meth:`AnyScaleGenerator.receptive_radius`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from burstsr.io.image import unit_float
from burstsr.refiner.networks import GeneratorConfig, ResidualBlock, _conv

# Output pixels rendered at once (the decoder's activations for them: 9 * latent + 5 inputs and
# ``decoder_width`` hidden values each, 4 times over).
QUERY_CHUNK = 2**15
LOGVAR_START = -4.0  # the log-variance's bias at initialisation: a standard deviation of 0.14


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)), averaged over every latent value."""
    return 0.5 * (mean.square() + logvar.exp() - 1 - logvar).mean()


def pixel_centres(
    inputs: int, outputs: int, start: int = 0, stop: int | None = None
) -> torch.Tensor:
    """The continuous positions (input pixel units) of output pixels ``start:stop`` along an
    axis of ``inputs`` pixels rendered as ``outputs``: ``(j + 0.5) * inputs / outputs``."""
    stop = outputs if stop is None else stop
    return (torch.arange(start, stop, dtype=torch.float64) + 0.5) * (inputs / outputs)


class AnyScaleGenerator(nn.Module):
    """``(N, 3, h, w)`` in [0, 1] -> ``(N, 3, H, W)`` for any ``H, W`` (:meth:`render`);
    ``forward`` renders at ``config.scale``. ``config.latent`` > 0 marks this architecture."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        if config.head_kernel != 9 or config.upsampler != "stages":
            raise ValueError("an any-scale generator has SRResNet's head and no upsampler")
        if config.latent <= 0 or config.unshuffle != 1 or config.confidence:
            raise ValueError("an any-scale generator needs latent > 0, no unshuffle, no confidence")
        self.config = config
        c, n = config.channels, config.latent
        self.head = nn.Sequential(_conv(3, c, 9), nn.PReLU(c))
        self.body = nn.Sequential(
            *[ResidualBlock(c, config.batch_norm) for _ in range(config.blocks)]
        )
        self.body_tail = nn.Sequential(
            _conv(c, c), nn.BatchNorm2d(c) if config.batch_norm else nn.Identity()
        )
        self.mean = _conv(c, n)
        self.logvar = _conv(c, n)
        with torch.no_grad():
            self.logvar.weight.zero_()
            self.logvar.bias.fill_(LOGVAR_START)
        width, layers = config.decoder_width, []
        size = 9 * n + 5  # the 3x3 latents, dy, dx, distance, cell height and width
        for _ in range(config.decoder_layers - 1):
            layers += [nn.Linear(size, width), nn.ReLU(inplace=True)]
            size = width
        self.decoder = nn.Sequential(*layers, nn.Linear(size, 3))

    # The encoder ---------------------------------------------------------------------------

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The latent field's mean and log-variance, ``(N, latent, h, w)`` each."""
        features = self.head(x[:, :3])
        features = features + self.body_tail(self.body(features))
        return self.mean(features), self.logvar(features)

    # The decoder ---------------------------------------------------------------------------

    def decode(
        self,
        z: torch.Tensor,
        image: torch.Tensor,
        ys: torch.Tensor,
        xs: torch.Tensor,
        cell: tuple[float, float],
    ) -> torch.Tensor:
        """Colours ``(N, 3, Q)`` at the ``Q`` positions ``(ys, xs)`` (input pixel units, 1-D,
        float64) of the latent field ``z`` ``(N, L, h, w)`` of ``image`` ``(N, 3, h, w)``;
        ``cell``: the output pixel's size in input pixels."""
        n, _, h, w = z.shape
        neighbourhoods = F.unfold(z, 3, padding=1)  # (N, 9L, h*w)
        fy, fx = ys - 0.5, xs - 0.5  # in latent index units
        y0, x0 = torch.floor(fy), torch.floor(fx)
        wy1, wx1 = (fy - y0), (fx - x0)
        q = ys.numel()
        cells = torch.tensor(cell, dtype=z.dtype, device=z.device).view(1, 2, 1).expand(n, 2, q)
        out = z.new_zeros(n, 3, q)
        for oy, wy in ((0, 1 - wy1), (1, wy1)):
            iy = (y0 + oy).clamp(0, h - 1)
            for ox, wx in ((0, 1 - wx1), (1, wx1)):
                ix = (x0 + ox).clamp(0, w - 1)
                dy, dx = ys - (iy + 0.5), xs - (ix + 0.5)
                index = (iy * w + ix).long().to(z.device)
                offsets = torch.stack([dy, dx, torch.sqrt(dy * dy + dx * dx)])
                offsets = offsets.to(z.dtype).to(z.device)[None].expand(n, 3, q)
                inputs = torch.cat([neighbourhoods[:, :, index], offsets, cells], dim=1)
                colour = self.decoder(inputs.transpose(1, 2)).transpose(1, 2)  # (N, 3, Q)
                out = out + colour * (wy * wx).to(z.dtype).to(z.device)
        grid = torch.stack([2 * xs / w - 1, 2 * ys / h - 1], dim=-1).to(z.dtype).to(z.device)
        base = F.grid_sample(
            image[:, :3],
            grid.view(1, 1, q, 2).expand(n, 1, q, 2),
            mode="bicubic",
            padding_mode="border",
            align_corners=False,
        )[:, :, 0]
        return out + base

    def latent(
        self, x: torch.Tensor, noise: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(z, mean, logvar)``: ``z`` is the mean, or with ``noise`` (standard normal, the
        latent's shape) a draw from the latent's Gaussian (the reparametrisation)."""
        mean, logvar = self.encode(x)
        z = mean if noise is None else mean + torch.exp(0.5 * logvar) * noise
        return z, mean, logvar

    def render(
        self,
        x: torch.Tensor,
        size: tuple[int, int],
        *,
        noise: torch.Tensor | None = None,
        rows: tuple[int, int] | None = None,
        cols: tuple[int, int] | None = None,
        full: tuple[int, int] | None = None,
        origin: tuple[int, int] = (0, 0),
    ) -> torch.Tensor:
        """``x`` rendered at ``size`` ``(H, W)``: ``(N, 3, H, W)``.

        For a tile of a larger image: ``full`` is the whole input's ``(h, w)``, ``origin`` the
        tile's top-left corner in it, ``size`` the whole output's size, and ``rows``/``cols``
        the output rows and columns to render (the tile's share); positions are the whole
        image's, so tiles agree with one pass."""
        h, w = x.shape[-2:] if full is None else full
        rows = rows or (0, size[0])
        cols = cols or (0, size[1])
        z, _, _ = self.latent(x, noise)
        ys = pixel_centres(h, size[0], *rows) - origin[0]
        xs = pixel_centres(w, size[1], *cols) - origin[1]
        cell = (h / size[0], w / size[1])
        n_rows = max(1, QUERY_CHUNK // max(1, xs.numel()))
        strips = []
        for r in range(0, ys.numel(), n_rows):
            yy = ys[r : r + n_rows]
            grid_y = yy[:, None].expand(-1, xs.numel()).reshape(-1)
            grid_x = xs[None, :].expand(yy.numel(), -1).reshape(-1)
            colours = self.decode(z, x, grid_y, grid_x, cell)
            strips.append(colours.view(x.shape[0], 3, yy.numel(), xs.numel()))
        return torch.cat(strips, dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.config.scale
        return self.render(x, (x.shape[-2] * s, x.shape[-1] * s))

    # Training --------------------------------------------------------------------------------

    def scale_loss(
        self,
        lr: torch.Tensor,
        hr: torch.Tensor,
        generator: torch.Generator,
        *,
        queries: int = 2304,
        kl_weight: float = 0.0,
        pixel: str = "l1",
    ) -> tuple[torch.Tensor, torch.Tensor, float]:
        """One training batch at a scale drawn uniformly from 1 to ``config.scale``: the HR
        crops resized to it (bicubic with antialiasing) are the truth at ``queries`` random
        output pixels, the latent is drawn (reparametrisation), and the loss is the pixel loss
        plus ``kl_weight`` times the KL divergence from N(0, 1). Returns ``(loss, pixel
        loss, scale)``."""
        from burstsr.refiner.losses import pixel_loss

        n, _, h, w = lr.shape
        top = self.config.scale
        s = 1 + (top - 1) * float(torch.rand((), generator=generator))
        size = (max(1, round(h * s)), max(1, round(w * s)))
        target = hr
        if size != tuple(hr.shape[-2:]):
            target = F.interpolate(
                hr, size=size, mode="bicubic", antialias=True, align_corners=False
            ).clamp(0, 1)
        count = size[0] * size[1]
        picked = torch.randperm(count, generator=generator)[:queries].to(lr.device)
        mean, logvar = self.encode(lr)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        ys = pixel_centres(h, size[0]).to(lr.device)[picked // size[1]]
        xs = pixel_centres(w, size[1]).to(lr.device)[picked % size[1]]
        colours = self.decode(z, lr, ys, xs, (h / size[0], w / size[1]))
        truth = target.flatten(2)[:, :, picked]
        loss_pix = pixel_loss(colours, truth, pixel)
        loss = loss_pix + kl_weight * kl_divergence(mean, logvar) if kl_weight else loss_pix
        return loss, loss_pix, s

    # Tiles -------------------------------------------------------------------------------------

    def pad_to_blocks(self, x: torch.Tensor) -> torch.Tensor:
        return x  # no folding

    def receptive_radius(self) -> int:
        """How far (input pixels) an output pixel sees: the encoder's 9x9 head, two 3x3 convs
        a block, the body's tail and the latent convs; the 3x3 neighbourhood and the second
        nearest latent in the decoder; the bicubic skip's taps."""
        return 4 + 2 * len(self.body) + 2 + 1 + 1 + 2


def output_rows(inputs: int, outputs: int, start: int, stop: int) -> tuple[int, int]:
    """The output rows (or columns) whose pixel centres lie in input pixels ``start:stop``
    (of ``inputs``, rendered as ``outputs``): the tile ``start:stop``'s share of the output."""
    ratio = outputs / inputs
    first = max(0, math.ceil(start * ratio - 0.5 - 1e-9))
    last = min(outputs, math.ceil(stop * ratio - 0.5 - 1e-9))
    return first, last


def latent_noise(seed: int, rows: range, width: int, channels: int) -> torch.Tensor:
    """Standard normal noise ``(1, channels, len(rows), width)`` for a latent field's rows
    ``rows``, each row drawn from its own generator (seeded from ``seed`` and the row), so a tile
    gets the same draw as the whole image."""
    out = torch.empty(1, channels, len(rows), width)
    for k, r in enumerate(rows):
        g = torch.Generator().manual_seed(seed * 1_000_003 + r)
        out[0, :, k] = torch.randn(channels, width, generator=g)
    return out


@torch.inference_mode()
def render_image(
    generator: AnyScaleGenerator,
    image: np.ndarray,
    size: tuple[int, int],
    *,
    tile: int | None = None,
    tile_pad: int | None = None,
    seed: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``image`` (``(h, w, 3)``: float32 in [0, 1], or its uint8 / uint16 samples) rendered at
    ``size`` ``(H, W)`` by an any-scale ``generator``, tile by tile.

    Each input tile renders the output pixels whose centres fall in it, from the tile and
    ``tile_pad`` pixels of context (default: the receptive radius, which makes the tiles exact:
    the same image as one pass). ``seed``: draw the latent from its distribution with this
    seed (the same draw whatever the tiling) instead of reading its mean. ``out``: an array
    ``(H, W, 3)`` to fill (float32, or uint8 / uint16 rounded to the full range).

    Returns:
        ``float32 (H, W, 3)`` in [0, 1] (or ``out``, filled).
    """
    from burstsr.refiner.enhance import DEFAULT_TILE, emit_rows, tile_boxes

    generator.eval()
    device = next(generator.parameters()).device
    h, w = image.shape[:2]
    height, width = size
    tile = DEFAULT_TILE if tile is None else tile
    if tile <= 0 or tile >= max(h, w):
        tile = max(h, w)
    pad = generator.receptive_radius() if tile_pad is None else tile_pad
    if out is None:
        out = np.empty((height, width, 3), np.float32)
    elif out.shape != (height, width, 3):
        raise ValueError(f"out: expected {(height, width, 3)}, got {out.shape}")
    boxes = [box for row in tile_boxes(h, w, tile, 0) for box in row]
    for done, box in enumerate(boxes, 1):
        y0, y1, x0, x1 = box.y0, box.y1, box.x0, box.x1
        rows, cols = output_rows(h, height, y0, y1), output_rows(w, width, x0, x1)
        if rows[0] < rows[1] and cols[0] < cols[1]:
            cy0, cy1 = max(y0 - pad, 0), min(y1 + pad, h)
            cx0, cx1 = max(x0 - pad, 0), min(x1 + pad, w)
            patch = unit_float(image[cy0:cy1, cx0:cx1, :3])
            patch = torch.from_numpy(np.ascontiguousarray(patch)).permute(2, 0, 1)[None]
            noise = None
            if seed is not None:
                noise = latent_noise(seed, range(cy0, cy1), w, generator.config.latent)
                noise = noise[..., cx0:cx1].to(device)
            rendered = generator.render(
                patch.to(device),
                size,
                noise=noise,
                rows=rows,
                cols=cols,
                full=(h, w),
                origin=(cy0, cx0),
            )
            rendered = rendered[0].clamp_(0, 1).permute(1, 2, 0).float().cpu().numpy()
            emit_rows(rendered, out, (slice(*rows), slice(*cols)))
        if progress is not None:
            progress(done, len(boxes))
    return out
