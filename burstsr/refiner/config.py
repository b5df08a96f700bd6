"""The options of ``burstsr train`` (no torch here: the command line imports this module)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

# VGG19 ``features`` layers the content loss can compare at, by name -> index of the layer.
VGG_LAYERS = {"relu1_2": 3, "relu2_2": 8, "relu3_4": 17, "relu4_4": 26, "relu5_4": 35}


@dataclass(frozen=True)
class TrainConfig:
    """Every option of ``burstsr train``; the CLI takes its defaults from here."""

    pairs: str = ""
    out: str = "run"
    val_dir: str | None = None
    val_fraction: float = 0.1
    # Architecture
    blocks: int = 16
    channels: int = 64
    batch_norm: bool = True
    unshuffle: int = 1  # fold the input by this factor (pairs merged on a finer grid)
    confidence: bool = False  # read the merge's confidence map too (the pairs' confidence.png)
    head_kernel: int = 9  # the first conv's kernel (smaller: a cheaper coarse network)
    upsampler: str = "stages"  # stages (SRResNet) | subpixel (ESPCN: nothing at the output size)
    disc_channels: int = 64
    disc: str = "srgan"  # srgan (one logit per crop) | patch (spectral norm, a logit map)
    init: str | None = None  # start from this generator's weights
    # > 0: an any-scale model (a latent field of this many channels + a coordinate decoder),
    # trained at scales drawn from 1 to the pairs' scale (burstsr.refiner.anyscale)
    latent: int = 0
    kl_weight: float = 1e-4  # any-scale: weight of the latent's KL divergence from N(0, 1)
    queries: int = 2304  # any-scale: output pixels a crop is scored on, each step
    # Schedule
    steps: int = 20_000
    pretrain_steps: int = 10_000
    batch: int = 16
    patch: int = 96  # HR crop size
    lr: float = 1e-4
    lr_step: int = 10_000  # multiply the learning rates by lr_gamma every lr_step steps
    lr_gamma: float = 0.5
    # raise the learning rates linearly from lr / warmup to lr over the first warmup steps (a
    # fine-tune from a trained model then does not jump away from it while Adam's moments settle)
    warmup: int = 0
    ema: float = 0.999
    # Losses
    pixel: str = "l1"
    pixel_weight: float = 0.01  # in the adversarial phase (pre-training uses the pixel loss alone)
    content_weight: float = 1.0
    content_layer: str = "relu5_4"
    adv_weight: float = 1e-3
    gan_loss: str = "standard"  # standard (SRGAN) | relativistic (RaGAN, as ESRGAN)
    periodic_weight: float = 0.0  # adversarial phase: penalty on a pattern locked to the 4 px grid
    grid_weight: float = 0.0  # both phases: penalty on the error locked to the 4 px grid
    vgg_weights: str | None = None
    # Bookkeeping
    val_every: int = 500
    log_every: int = 50
    val_crop: int = 384  # HR centre crop used for validation (0: whole images)
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # mixed precision, on CUDA only
    time_limit: float = 0.0  # minutes of training in this command, then a checkpoint (0: none)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
