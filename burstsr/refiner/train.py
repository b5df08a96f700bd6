"""Training the refiner: pixel-loss pre-training, then the SRGAN adversarial phase.

``train(config)`` reads the pairs, builds the generator and discriminator, and for
``config.steps`` steps:

- steps ``< pretrain_steps``: generator only, pixel loss;
- later steps: a discriminator update (real HR crops against detached generator outputs), then
  a generator update on ``pixel_weight * pixel + content_weight * VGG + adv_weight * adversarial``
  (the discriminator is not stepped during the generator's update).

Adam (beta1 0.9) for both, the learning rate raised linearly over the first ``warmup`` steps
and multiplied by ``lr_gamma`` every ``lr_step`` steps (``learning_rate``), an EMA of the
generator's weights (validated and saved), validation PSNR/SSIM (Y channel, border = scale)
every ``val_every`` steps. A run folder gets ``last.pt`` / ``best.pt`` (+ ``.json``),
``resume.pt``, ``metrics.jsonl``, ``loss_curves.png`` and ``samples.png``. Started under
``torchrun`` it trains with DistributedDataParallel (NCCL on CUDA, Gloo on the CPU); only rank 0
writes.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from burstsr.device import autocast, resolve_device
from burstsr.errors import CheckpointError, InputError
from burstsr.io import make_folder
from burstsr.refiner.checkpoint import (
    load_generator,
    load_resume,
    save_generator,
    save_resume,
    start_for,
)
from burstsr.refiner.config import TrainConfig
from burstsr.refiner.data import PairDataset, pairs_merge_kernel
from burstsr.refiner.distributed import Rank, gather_states, init_distributed
from burstsr.refiner.losses import (
    ContentLoss,
    adversarial_loss,
    grid_error_loss,
    periodic_loss,
    pixel_loss,
    relativistic_loss,
)
from burstsr.refiner.networks import (
    Discriminator,
    DiscriminatorConfig,
    Generator,
    GeneratorConfig,
    build_generator,
)
from burstsr.refiner.plots import loss_curves, sample_grid
from burstsr.refiner.validate import validate, validation_pairs
from burstsr.refiner.warm_start import init_from

__all__ = ["TrainConfig", "init_from", "train"]

log = logging.getLogger(__name__)

Progress = Callable[[int, int, dict], None]  # (step, total steps, latest losses)


def learning_rate(config: TrainConfig, step: int) -> float:
    """The learning rate of step ``step`` (from 0): a linear warm-up over ``config.warmup`` steps,
    then ``config.lr`` times ``lr_gamma`` for every ``lr_step`` steps done."""
    lr = config.lr * config.lr_gamma ** (step // config.lr_step)
    if step < config.warmup:
        lr *= (step + 1) / config.warmup
    return lr


def _update_ema(ema: Generator, model: Generator, decay: float) -> None:
    with torch.no_grad():
        torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1 - decay)
        buffers = list(ema.buffers())  # batch norm's statistics; none without it
        if buffers:
            torch._foreach_copy_(buffers, list(model.buffers()))


def _time_up(started: float, minutes: float, ddp: Rank, device: torch.device) -> bool:
    """Whether ``minutes`` (> 0) have passed since ``started``; every rank gets rank 0's answer."""
    if minutes <= 0:
        return False
    up = time.monotonic() - started >= 60 * minutes
    if ddp.world == 1:
        return up
    shared = torch.tensor([float(up)], device=device)
    dist.broadcast(shared, src=0)
    return bool(shared.item())


def train(config: TrainConfig, *, resume: bool = False, progress: Progress | None = None) -> dict:
    """Train (or, with ``resume``, continue training) a refiner; returns the final metrics.

    Raises:
        InputError: bad pairs folder, patch, device or options.
        CheckpointError: ``resume`` without a usable ``resume.pt`` in ``config.out``.
    """
    device = resolve_device(config.device)
    ddp = init_distributed(device)
    if ddp.world > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    out = Path(config.out)
    if config.pretrain_steps > config.steps:
        raise InputError(f"--pretrain-steps {config.pretrain_steps} exceeds --steps {config.steps}")
    train_pairs, val_pairs, scale = validation_pairs(
        config.pairs, config.val_dir, config.val_fraction, config.seed
    )
    if config.patch // scale < 4:
        raise InputError(f"--patch {config.patch}: too small for x{scale}; use >= {4 * scale}")
    u = config.unshuffle
    conf = config.confidence
    any_scale = config.latent > 0
    if any_scale:
        if u != 1 or conf:
            raise InputError(
                "--latent: an any-scale model reads merges on the frames' grid; drop "
                "--unshuffle and --confidence"
            )
        if config.steps > config.pretrain_steps:
            raise InputError(
                "--latent: an any-scale model trains with the pixel loss only; set "
                "--pretrain-steps to --steps"
            )
        if ddp.world > 1:
            raise InputError("--latent: an any-scale model trains on one device")
        if config.head_kernel != 9 or config.upsampler != "stages":
            raise InputError("--head-kernel, --upsampler: not for an any-scale model (--latent)")
        if config.grid_weight > 0:
            raise InputError("--grid-weight: not for an any-scale model (--latent)")
    data = PairDataset(train_pairs, scale, config.patch, align=u, confidence=conf)
    val_data = (
        PairDataset(val_pairs, scale, config.patch, augment=False, align=u, confidence=conf)
        if val_pairs
        else None
    )

    torch.manual_seed(config.seed)
    gen_config = GeneratorConfig(
        scale=scale,
        channels=config.channels,
        blocks=config.blocks,
        batch_norm=config.batch_norm,
        unshuffle=u,
        confidence=conf,
        merge_kernel=pairs_merge_kernel(train_pairs + val_pairs),
        latent=config.latent,
        head_kernel=config.head_kernel,
        upsampler=config.upsampler,
    )
    generator = build_generator(gen_config).to(device)
    if config.init and not resume:
        taken = init_from(generator, load_generator(config.init))
        log.info(
            "--init %s: %d of %d tensors taken", config.init, taken, len(generator.state_dict())
        )
    disc_config = DiscriminatorConfig(channels=config.disc_channels, kind=config.disc)
    disc = Discriminator(disc_config).to(device)
    channels_last = device.type == "cpu"  # oneDNN's convolutions run faster so (about 12 %)
    if channels_last:
        generator.to(memory_format=torch.channels_last)
        disc.to(memory_format=torch.channels_last)
    ema = copy.deepcopy(generator).eval().requires_grad_(False)
    content = None
    if config.steps > config.pretrain_steps and config.content_weight > 0:
        content = ContentLoss(config.content_layer, config.vgg_weights).to(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr, betas=(0.9, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=config.lr, betas=(0.9, 0.999))
    crops = torch.Generator().manual_seed(config.seed * 1000 + ddp.rank)
    step, best = 0, -float("inf")
    history: list[dict] = []

    if resume:
        state = load_resume(out / "resume.pt")
        try:
            generator.load_state_dict(state["generator"])
            disc.load_state_dict(state["discriminator"])
            ema.load_state_dict(state["ema"])
            opt_g.load_state_dict(state["opt_g"])
            opt_d.load_state_dict(state["opt_d"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(
                f"{out / 'resume.pt'}: does not fit this configuration ({str(exc).splitlines()[0]})"
            ) from None
        crops.set_state(
            state["crops"][ddp.rank] if ddp.rank < len(state["crops"]) else state["crops"][0]
        )
        torch.set_rng_state(state["torch_rng"])
        step, best = int(state["step"]), float(state["best"])
        history = _read_metrics(out / "metrics.jsonl", step)
        log.info("resuming %s at step %d", out, step)
    elif ddp.main:
        make_folder(out, what="run folder")

    if ddp.world > 1:
        generator_t = DistributedDataParallel(generator)
        disc_t = DistributedDataParallel(disc)
    else:
        generator_t, disc_t = generator, disc
    use_amp = config.amp and device.type == "cuda"
    scaler_g = torch.amp.GradScaler("cuda", enabled=use_amp)
    scaler_d = torch.amp.GradScaler("cuda", enabled=use_amp)
    train_args = config.to_dict()
    start = start_for(config.init) if config.init else None  # where --strength 0 leads
    metrics_file = out / "metrics.jsonl"
    if ddp.main and not resume:
        metrics_file.write_text("")

    def record(entry: dict) -> None:
        history.append(entry)
        if ddp.main:
            with metrics_file.open("a") as fh:
                fh.write(json.dumps(entry) + "\n")

    def checkpoint(val: dict | None) -> None:
        nonlocal best
        crop_states = gather_states(crops, ddp)  # a collective: every rank takes part
        if not ddp.main:
            return
        metrics = {"step": step, **(val or {})}
        save_generator(out / "last.pt", ema, train_args=train_args, metrics=metrics, start=start)
        if val and val["val_psnr"] > best:
            best = val["val_psnr"]
            save_generator(
                out / "best.pt", ema, train_args=train_args, metrics=metrics, start=start
            )
        save_resume(
            out / "resume.pt",
            {
                "step": step,
                "best": best,
                "config": train_args,
                "generator": generator.state_dict(),
                "discriminator": disc.state_dict(),
                "ema": ema.state_dict(),
                "opt_g": opt_g.state_dict(),
                "opt_d": opt_d.state_dict(),
                "crops": crop_states,
                "torch_rng": torch.get_rng_state(),
            },
        )
        loss_curves(history, out / "loss_curves.png")

    running: dict[str, list[float]] = {}
    last_val = None
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop sizes: pick the fastest kernels once
        # The CPU only cuts crops: a few threads do it, and runs side by side (or a test suite)
        # do not oversubscribe the cores (their spinning threads slowed two runs 30-fold).
        torch.set_num_threads(min(torch.get_num_threads(), 4))
    started = time.monotonic()
    while step < config.steps:
        lr = learning_rate(config, step)
        for group in (*opt_g.param_groups, *opt_d.param_groups):
            group["lr"] = lr
        lr_batch, hr_batch = data.batch(config.batch, crops)
        lr_batch, hr_batch = lr_batch.to(device), hr_batch.to(device)
        if channels_last:
            lr_batch = lr_batch.contiguous(memory_format=torch.channels_last)
        adversarial = step >= config.pretrain_steps
        generator_t.train()
        if not any_scale:  # an any-scale model renders its own queries (scale_loss below)
            with autocast(device, enabled=use_amp):
                sr = generator_t(lr_batch)
        losses = {}
        if adversarial:
            disc_t.train()
            opt_d.zero_grad(set_to_none=True)
            with autocast(device, enabled=use_amp):
                logits = disc_t(torch.cat([hr_batch, sr.detach().float()]))
                n = hr_batch.shape[0]
                if config.gan_loss == "relativistic":
                    loss_d = relativistic_loss(logits[:n], logits[n:], for_generator=False)
                else:
                    loss_d = adversarial_loss(logits[:n], True) + adversarial_loss(
                        logits[n:], False
                    )
                real_logits = logits[:n].detach()
            # What the discriminator says of each, as a probability of "real" (logged).
            probs = torch.sigmoid(logits.detach().float())
            losses["d_real"], losses["d_fake"] = probs[:n].mean().item(), probs[n:].mean().item()
            scaler_d.scale(loss_d).backward()
            scaler_d.step(opt_d)
            scaler_d.update()
            losses["d"] = loss_d.item()
        opt_g.zero_grad(set_to_none=True)
        with autocast(device, enabled=use_amp):
            if any_scale:
                loss_g, loss_pix, _ = generator.scale_loss(
                    lr_batch,
                    hr_batch,
                    crops,
                    queries=config.queries,
                    kl_weight=config.kl_weight,
                    pixel=config.pixel,
                )
            else:
                loss_pix = pixel_loss(sr.float(), hr_batch, config.pixel)
                loss_g = loss_pix
                if config.grid_weight > 0:
                    loss_grid = grid_error_loss(sr.float(), hr_batch)
                    loss_g = loss_g + config.grid_weight * loss_grid
                    losses["grid"] = loss_grid.item()
            if adversarial:  # never for an any-scale model (checked above)
                loss_g = config.pixel_weight * loss_pix
                if config.grid_weight > 0:
                    loss_g = loss_g + config.grid_weight * loss_grid
                if content is not None:
                    loss_c = content(sr.float(), hr_batch)
                    loss_g = loss_g + config.content_weight * loss_c
                    losses["content"] = loss_c.item()
                fake_logits = disc_t(sr)
                if config.gan_loss == "relativistic":
                    loss_adv = relativistic_loss(real_logits, fake_logits, for_generator=True)
                else:
                    loss_adv = adversarial_loss(fake_logits, True)
                loss_g = loss_g + config.adv_weight * loss_adv
                losses["adv"] = loss_adv.item()
                if config.periodic_weight > 0:
                    loss_per = periodic_loss(sr.float(), hr_batch)
                    loss_g = loss_g + config.periodic_weight * loss_per
                    losses["periodic"] = loss_per.item()
        losses["pixel"] = loss_pix.item()
        scaler_g.scale(loss_g).backward()
        scaler_g.step(opt_g)
        scaler_g.update()
        opt_d.zero_grad(set_to_none=True)  # the generator's update left gradients in D: unused
        _update_ema(ema, generator, config.ema if step >= 10 else 0.0)
        step += 1
        for k, v in losses.items():
            running.setdefault(k, []).append(v)
        if step % config.log_every == 0 or step == config.steps:
            entry = {
                "step": step,
                "phase": "gan" if adversarial else "pretrain",
                "lr": opt_g.param_groups[0]["lr"],
            }
            entry.update(
                {
                    (k if k.startswith("d_") else f"loss_{k}"): float(np.mean(v))
                    for k, v in running.items()
                }
            )
            record(entry)
            running = {}
        stop = _time_up(started, config.time_limit, ddp, device)
        if step % config.val_every == 0 or step == config.steps or stop:
            last_val = None
            if val_data is not None and ddp.main:
                last_val = validate(ema, val_data, config.val_crop, device)
                record({"step": step, **last_val})
                sample_grid(ema, val_data, out / "samples.png", device)
            checkpoint(last_val)
        if progress is not None:
            progress(step, config.steps, losses)
        if stop:
            log.info("--time-limit %g min reached at step %d", config.time_limit, step)
            break
    if ddp.world > 1:
        dist.barrier()
    return {"step": step, "best_val_psnr": best, **(last_val or {})}


def _read_metrics(path: Path, step: int) -> list[dict]:
    """The metrics log up to ``step`` (later lines, written after the last save, are dropped)."""
    if not path.is_file():
        return []
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    entries = [e for e in entries if e["step"] <= step]
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return entries
