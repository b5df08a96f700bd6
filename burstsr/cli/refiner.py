"""``burstsr synth``, ``burstsr train`` and ``burstsr enhance``."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import click

from burstsr.burst.config import KERNELS, MergeConfig
from burstsr.burst.synth import DEGRADATIONS, SynthConfig, write_pairs
from burstsr.cli import command, progress_bar
from burstsr.cli.options import ensemble_option, model_option, tile_option
from burstsr.device import DEVICES, resolve_device
from burstsr.errors import InputError, OutputError
from burstsr.io import check_folder, check_output, list_frames, make_folder
from burstsr.io.confidence import read_confidence
from burstsr.refiner.config import VGG_LAYERS, TrainConfig

log = logging.getLogger("burstsr")


def _frame_range(text: str | None, degradation: str) -> tuple[int, int]:
    """``--frames`` as (fewest, most): N or A-B, 2 to 64; the default depends on the
    degradation."""
    if text is None:
        if degradation != "simple":
            return _synth.camera.frames
        frames = _synth.frames
        return (frames, frames) if isinstance(frames, int) else frames
    low, _, high = text.partition("-")
    try:
        low, high = int(low), int(high or low)
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected N or A-B", param_hint="--frames") from None
    if not 2 <= low <= high <= 64:
        raise click.BadParameter(f"{text!r}: frames go from 2 to 64, A <= B", param_hint="--frames")
    return low, high


# ---------------------------------------------------------------------------------------------
# synth: HR images -> simulated bursts -> merges -> training pairs

_synth = SynthConfig()


@command()
@click.argument("hr_dir", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    required=True,
    help="Pairs folder to write (<scene>/{frames/, result.png, HR.png, meta.json}).",
)
@click.option(
    "--degradation",
    type=click.Choice(DEGRADATIONS),
    default=_synth.degradation,
    show_default=True,
    help="simple: area downsampling + Gaussian noise; camera: lens blur, Bayer mosaic, shot and "
    "read noise, demosaicing, sRGB, JPEG, zoom and almost-still frames, all drawn per scene "
    "(docs/training.md); mixed: each scene one or the other.",
)
@click.option(
    "--frames",
    default=None,
    help="Frames per burst, N or a range A-B drawn per scene "
    "[default: 8 simple, 2-16 camera and mixed].",
)
@click.option(
    "--raw",
    is_flag=True,
    help="Camera bursts: write the frames as DNG (the noisy sensor mosaic) instead of JPEG-"
    "like PNGs, so the merge goes through the RAW path.",
)
@click.option(
    "--kernel",
    type=click.Choice(KERNELS),
    default=_synth.merge.kernel,
    show_default=True,
    help="The finer-grid merge's kernels (with --merge-scale > 1); a model trained on the "
    "pairs merges with the same.",
)
@click.option(
    "--scale",
    type=click.Choice(["1", "2", "3", "4", "8"]),
    default=str(_synth.scale),
    show_default=True,
    help="Area downsampling from HR to the frames.",
)
@click.option(
    "--noise",
    type=click.FloatRange(0, 1),
    default=_synth.noise,
    show_default=True,
    help="Read noise standard deviation.",
)
@click.option(
    "--shot-noise",
    type=click.FloatRange(0, 1),
    default=_synth.shot_noise,
    show_default=True,
    help="Shot noise: variance grows by this times the signal.",
)
@click.option(
    "--shift",
    type=click.FloatRange(0),
    default=_synth.shift,
    show_default=True,
    help="Largest handheld shift, in frame pixels.",
)
@click.option(
    "--rotate",
    type=click.FloatRange(0),
    default=_synth.rotate,
    show_default=True,
    help="Largest handheld rotation, in degrees.",
)
@click.option(
    "--merge-scale",
    type=click.Choice(["1", "2", "4"]),
    default=str(_synth.merge.scale),
    show_default=True,
    help="Merge onto a finer grid: the pairs keep scale / merge-scale to learn.",
)
@click.option("--seed", type=int, default=_synth.seed, show_default=True)
@click.option("--overwrite", is_flag=True, help="Write into a pairs folder that has scenes.")
@click.pass_context
def synth(
    ctx: click.Context,
    hr_dir: Path,
    out: Path,
    degradation: str,
    frames: str | None,
    raw: bool,
    kernel: str,
    scale: str,
    noise: float,
    shot_noise: float,
    shift: float,
    rotate: float,
    merge_scale: str,
    seed: int,
    overwrite: bool,
) -> None:
    """Simulate handheld bursts of the images in HR_DIR, merge them, and write training pairs."""
    low, high = _frame_range(frames, degradation)
    sources = list_frames(hr_dir)
    check_folder(out, what="pairs folder")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise OutputError(f"{out}: not empty; pass --overwrite to add or replace scenes")
    with progress_bar("Synthesising", len(sources), not ctx.obj["quiet"]) as progress:
        config = SynthConfig(
            degradation=degradation,
            frames=(low, high),
            scale=int(scale),
            noise=noise,
            shot_noise=shot_noise,
            shift=shift,
            rotate=rotate,
            seed=seed,
            camera=dataclasses.replace(_synth.camera, frames=(low, high)),
            raw=raw,
            merge=MergeConfig(scale=int(merge_scale), kernel=kernel),
        )
        written = write_pairs(hr_dir, out, config, progress=progress)
    log.info("wrote %d pairs to %s", len(written), out)


# ---------------------------------------------------------------------------------------------
# train: pairs -> refiner checkpoints

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
    "--steps may extend it).",
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
    "--init",
    default=None,
    help="Start from this model's weights where they fit (a shipped name, run folder or .pt); "
    "blocks beyond its depth start as the identity.",
)
@click.option(
    "--disc-channels",
    type=click.IntRange(1),
    default=_train.disc_channels,
    show_default=True,
    help="Discriminator width (first stage).",
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
    "--vgg-weights",
    type=click.Path(path_type=Path),
    default=None,
    help="torchvision vgg19 ImageNet weights (vgg19-dcbb9e9d.pth).",
)
@click.option("--ema", type=click.FloatRange(0, 1), default=_train.ema, show_default=True)
@click.option("--val-every", type=click.IntRange(1), default=_train.val_every, show_default=True)
@click.option("--log-every", type=click.IntRange(1), default=_train.log_every, show_default=True)
@click.option("--seed", type=int, default=_train.seed, show_default=True)
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.pass_context
def train(
    ctx: click.Context, pairs: Path | None, out: Path, resume: Path | None, **options
) -> None:
    """Train the refiner (SRResNet generator, SRGAN discriminator) on merged/HR pairs."""
    from burstsr.refiner.checkpoint import load_resume
    from burstsr.refiner.train import train as train_refiner

    if resume is not None:
        saved = load_resume(resume / "resume.pt")["config"]
        config = TrainConfig(**{**saved, "out": str(resume)})
        if ctx.get_parameter_source("steps") == click.core.ParameterSource.COMMANDLINE:
            config = dataclasses.replace(config, steps=options["steps"])
        if ctx.get_parameter_source("device") == click.core.ParameterSource.COMMANDLINE:
            config = dataclasses.replace(config, device=options["device"])
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
    log.info(
        "trained to step %d; best validation PSNR %.2f dB; run folder %s",
        final["step"],
        final["best_val_psnr"],
        config.out,
    )


# ---------------------------------------------------------------------------------------------
# enhance: image -> refined, upscaled image


@command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Output file (a folder, for a folder in) [default: NAME_xS.png here; "
    "enhanced/ for a folder].",
)
@model_option()
@tile_option
@click.option(
    "--tile-pad",
    type=click.IntRange(0),
    default=None,
    help="Context around each tile [default: the network's receptive radius].",
)
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--half", is_flag=True, help="fp16 inference (CUDA only).")
@ensemble_option
@click.option(
    "--bit-depth",
    type=click.Choice(["8", "16"]),
    default=None,
    help="Output bits per sample [default: as the input].",
)
@click.option(
    "--confidence",
    "confidence_path",
    type=click.Path(path_type=Path),
    default=None,
    help="For a model that reads it: the merge's confidence map (merge --save-confidence) "
    "[default: that of an evenly sampled 8-frame burst].",
)
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@click.pass_context
def enhance(
    ctx: click.Context,
    source: Path,
    output: Path | None,
    model: str,
    tile: int,
    tile_pad: int | None,
    device: str,
    half: bool,
    ensemble: bool,
    bit_depth: str | None,
    confidence_path: Path | None,
    overwrite: bool,
) -> None:
    """Restore and upscale SOURCE (an image, or a folder of images) with the refiner."""
    from burstsr.refiner.checkpoint import load_generator
    from burstsr.refiner.enhance import enhance_file

    confidence = read_confidence(confidence_path) if confidence_path is not None else None
    generator = load_generator(model, device=resolve_device(device))
    scale, grid = generator.config.scale, generator.config.unshuffle
    if grid > 1:  # a file does not say which grid it was merged on: say what the model expects
        log.info(
            "model %s restores merges made on a x%d grid (burstsr merge --scale %d) at their "
            "size%s; for a merge on the frames' grid use a model that upscales (--model fidelity)",
            model,
            grid,
            grid,
            f" and upscales them x{scale}" if scale > 1 else "",
        )
    if source.is_dir():
        inputs = list_frames(source)
        folder = check_folder(output or Path("enhanced"))
        jobs = [(p, folder / f"{p.stem}_x{scale}.png") for p in inputs]
    elif source.is_file():
        jobs = [(source, output or Path(f"{source.stem}_x{scale}.png"))]
    else:
        raise InputError(f"{source}: no such file or folder")
    depth = int(bit_depth) if bit_depth else None
    for _, dst in jobs:  # a folder still to be made holds nothing to collide with
        if dst.parent.is_dir():
            check_output(dst, inputs=[p for p, _ in jobs], overwrite=overwrite, bit_depth=depth)
        else:
            check_output(dst.name, overwrite=True, bit_depth=depth)  # the format alone
    if source.is_dir():
        make_folder(folder)  # only now that every check has passed
    for src, dst in jobs:
        with progress_bar(f"Enhancing {src.name}", 100, not ctx.obj["quiet"]) as progress:

            def update(done: int, total: int, bar=progress) -> None:
                if bar is not None:
                    bar(round(100 * done / total), 100, f"tile {done}/{total}")

            result = enhance_file(
                generator,
                src,
                dst,
                tile=tile,
                tile_pad=tile_pad,
                half=half,
                ensemble=ensemble,
                bit_depth=depth,
                confidence=confidence,
                progress=update,
            )
        log.info("%s -> %s (x%d, %dx%d)", src, dst, scale, result.shape[1], result.shape[0])
