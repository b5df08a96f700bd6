"""``burstsr train``: training pairs -> refiner checkpoints (torch is imported when it runs)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import click

from burstsr.cli import command, progress_bar
from burstsr.cli.options import device_option
from burstsr.device import resolve_device
from burstsr.errors import InputError, OutputError
from burstsr.io import check_folder
from burstsr.refiner.config import VGG_LAYERS, TrainConfig

log = logging.getLogger("burstsr")

_train = TrainConfig()


@command()
@click.option("--pairs", type=click.Path(path_type=Path), help="Pairs folder (burstsr synth).")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path(_train.out),
    show_default=True,
    help="Run folder: checkpoints, metrics, pictures.",
)
@click.option(
    "--resume",
    type=click.Path(path_type=Path),
    default=None,
    help="Continue the run in this folder where it stopped (its options are kept; "
    "--steps may extend it, a pixel-loss run staying one, and --pretrain-steps move the "
    "adversarial phase's start while the run has not reached it).",
)
@click.option(
    "--val-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Validation pairs folder (instead of --val-fraction).",
)
@click.option("--val-fraction", type=float, default=_train.val_fraction, show_default=True)
@click.option("--blocks", type=click.IntRange(0), default=_train.blocks, show_default=True)
@click.option("--channels", type=click.IntRange(1), default=_train.channels, show_default=True)
@click.option("--no-bn", is_flag=True, help="Generator without batch normalisation.")
@click.option(
    "--unshuffle",
    type=click.Choice(["1", "2", "4"]),
    default=str(_train.unshuffle),
    show_default=True,
    help="Fold the input by this factor first: N for pairs made with synth --merge-scale N.",
)
@click.option(
    "--confidence",
    is_flag=True,
    help="The generator also reads the merge's confidence map (each scene's confidence.png, "
    "which synth writes for merges on a finer grid); burstsr run passes it.",
)
@click.option(
    "--head-kernel",
    type=click.Choice(["3", "5", "7", "9"]),
    default=str(_train.head_kernel),
    show_default=True,
    help="Kernel of the generator's first conv (smaller: cheaper; for coarse networks).",
)
@click.option(
    "--upsampler",
    type=click.Choice(["stages", "subpixel"]),
    default=_train.upsampler,
    show_default=True,
    help="stages: SRResNet's PixelShuffle stages and a 9x9 output conv; subpixel: one 3x3 conv "
    "and one PixelShuffle, nothing at the output size (a cheap coarse network for --route).",
)
@click.option(
    "--latent",
    type=click.IntRange(0),
    default=_train.latent,
    show_default=True,
    help="Train an any-scale model (enhance/run --outscale renders it at any size): the body's "
    "features become a latent field of this many channels, read by a coordinate decoder; "
    "0: a fixed-scale SRResNet. Frames'-grid pairs (no --unshuffle, no --confidence).",
)
@click.option(
    "--kl-weight",
    type=click.FloatRange(0),
    default=_train.kl_weight,
    show_default=True,
    help="Any-scale: weight of the latent's KL divergence from a standard normal.",
)
@click.option(
    "--queries",
    type=click.IntRange(16),
    default=_train.queries,
    show_default=True,
    help="Any-scale: output pixels each crop is scored on, each step.",
)
@click.option(
    "--init",
    default=None,
    help="Start from this model's weights where they fit (a shipped name, run folder or .pt); "
    "blocks beyond its depth start as the identity, channels beyond its width unread (so a deeper "
    "or wider model starts out computing what it computes).",
)
@click.option(
    "--disc-channels",
    type=click.IntRange(1),
    default=_train.disc_channels,
    show_default=True,
    help="Discriminator width (first stage).",
)
@click.option(
    "--disc",
    type=click.Choice(["srgan", "patch"]),
    default=_train.disc,
    show_default=True,
    help="srgan: conv/BN/LeakyReLU and a dense head, one logit per crop; patch: spectral-norm "
    "convs, a logit per local patch (steadier on small budgets).",
)
@click.option(
    "--gan-loss",
    type=click.Choice(["standard", "relativistic"]),
    default=_train.gan_loss,
    show_default=True,
    help="standard: SRGAN's; relativistic: real against the average fake and back (ESRGAN's).",
)
@click.option(
    "--val-crop",
    type=click.IntRange(0),
    default=_train.val_crop,
    show_default=True,
    help="HR centre crop for validation (0: whole images).",
)
@click.option("--steps", type=click.IntRange(1), default=_train.steps, show_default=True)
@click.option(
    "--pretrain-steps",
    type=click.IntRange(0),
    default=_train.pretrain_steps,
    show_default=True,
    help="Pixel-loss-only steps before the adversarial phase.",
)
@click.option("--batch", type=click.IntRange(1), default=_train.batch, show_default=True)
@click.option(
    "--patch", type=click.IntRange(4), default=_train.patch, show_default=True, help="HR crop size."
)
@click.option("--lr", type=float, default=_train.lr, show_default=True)
@click.option(
    "--lr-step",
    type=click.IntRange(1),
    default=_train.lr_step,
    show_default=True,
    help="Halve (x --lr-gamma) the learning rates every this many steps.",
)
@click.option("--lr-gamma", type=float, default=_train.lr_gamma, show_default=True)
@click.option(
    "--warmup",
    type=click.IntRange(0),
    default=_train.warmup,
    show_default=True,
    help="Raise the learning rates linearly over the first this many steps (fine-tunes).",
)
@click.option("--pixel", type=click.Choice(["l1", "mse"]), default=_train.pixel, show_default=True)
@click.option(
    "--pixel-weight",
    type=float,
    default=_train.pixel_weight,
    show_default=True,
    help="Pixel loss weight in the adversarial phase.",
)
@click.option("--content-weight", type=float, default=_train.content_weight, show_default=True)
@click.option(
    "--content-layer",
    type=click.Choice(list(VGG_LAYERS)),
    default=_train.content_layer,
    show_default=True,
)
@click.option("--adv-weight", type=float, default=_train.adv_weight, show_default=True)
@click.option(
    "--periodic-weight",
    type=click.FloatRange(0),
    default=_train.periodic_weight,
    show_default=True,
    help="Adversarial phase: weight of a penalty on a pattern locked to the 4-pixel output grid "
    "(beyond the HR crop's own), which GANs on PixelShuffle upsamplers tend to paint.",
)
@click.option(
    "--grid-weight",
    type=click.FloatRange(0),
    default=_train.grid_weight,
    show_default=True,
    help="Both phases: weight of a penalty on the part of the error locked to the 4-pixel "
    "output grid (a faint screen the pixel loss barely sees).",
)
@click.option(
    "--vgg-weights",
    type=click.Path(path_type=Path),
    default=None,
    help="torchvision vgg19 ImageNet weights (vgg19-dcbb9e9d.pth).",
)
@click.option("--ema", type=click.FloatRange(0, 1), default=_train.ema, show_default=True)
@click.option("--val-every", type=click.IntRange(1), default=_train.val_every, show_default=True)
@click.option("--log-every", type=click.IntRange(1), default=_train.log_every, show_default=True)
@click.option("--seed", type=int, default=_train.seed, show_default=True)
@click.option(
    "--time-limit",
    type=click.FloatRange(0),
    default=_train.time_limit,
    show_default=True,
    metavar="MINUTES",
    help="Stop with a checkpoint once this many minutes of training have passed (0: no limit); "
    "--resume RUN_DIR continues from there.",
)
@device_option
@click.pass_context
def train(
    ctx: click.Context, pairs: Path | None, out: Path, resume: Path | None, **options
) -> None:
    """Train the refiner (SRResNet generator, SRGAN discriminator) on merged/HR pairs."""
    from burstsr.refiner.checkpoint import load_resume
    from burstsr.refiner.train import train as train_refiner

    if resume is not None:
        state = load_resume(resume / "resume.pt")
        saved = state["config"]
        config = TrainConfig(**{**saved, "out": str(resume)})
        given = {
            name
            for name in ("steps", "pretrain_steps")
            if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE
        }
        if "steps" in given:
            config = dataclasses.replace(config, steps=options["steps"])
            if "pretrain_steps" not in given and saved["pretrain_steps"] >= saved["steps"]:
                # A pixel-loss run extended stays one (--pretrain-steps adds an adversarial phase).
                config = dataclasses.replace(config, pretrain_steps=options["steps"])
        if "pretrain_steps" in given and options["pretrain_steps"] != saved["pretrain_steps"]:
            if int(state["step"]) > saved["pretrain_steps"]:
                raise InputError(
                    f"--pretrain-steps: run {resume} is past its pixel pre-training (step "
                    f"{int(state['step'])} of {saved['pretrain_steps']}); it cannot change now"
                )
            config = dataclasses.replace(config, pretrain_steps=options["pretrain_steps"])
        if ctx.get_parameter_source("device") == click.core.ParameterSource.COMMANDLINE:
            config = dataclasses.replace(config, device=options["device"])
        # A time limit belongs to one command, not to the run: only this command line's counts.
        config = dataclasses.replace(config, time_limit=options["time_limit"])
    else:
        if pairs is None:
            raise click.UsageError("--pairs is required (or --resume RUN_DIR)")
        check_folder(out, what="run folder")
        if out.exists() and any(out.iterdir()):
            raise OutputError(
                f"{out}: not empty; pass --resume {out} to continue that run, or "
                f"choose another --out"
            )
        batch_norm = not options.pop("no_bn")
        vgg = options.pop("vgg_weights")
        val_dir = options.pop("val_dir")
        config = TrainConfig(
            pairs=str(pairs),
            out=str(out),
            batch_norm=batch_norm,
            unshuffle=int(options.pop("unshuffle")),
            head_kernel=int(options.pop("head_kernel")),
            vgg_weights=str(vgg) if vgg else None,
            val_dir=str(val_dir) if val_dir else None,
            **options,
        )
    resolve_device(config.device)
    with progress_bar("Training", config.steps, not ctx.obj["quiet"]) as progress:

        def update(step: int, total: int, losses: dict) -> None:
            if progress is not None:
                text = " ".join(f"{k} {v:.4f}" for k, v in losses.items())
                progress(step, total, text)

        final = train_refiner(config, resume=resume is not None, progress=update)
    if final["step"] < config.steps:
        log.info(
            "stopped at step %d of %d (--time-limit %g min); continue with --resume %s",
            final["step"],
            config.steps,
            config.time_limit,
            config.out,
        )
    log.info(
        "trained to step %d; best validation PSNR %.2f dB; run folder %s",
        final["step"],
        final["best_val_psnr"],
        config.out,
    )
