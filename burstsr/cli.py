"""The ``burstsr`` command line: parse options, resolve paths and device, call one library
function, report. No numerics here. Every error is one line on stderr and exit code 2."""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import click

from burstsr.burst.align import ALIGN_METHODS, MOTIONS
from burstsr.burst.merge import MERGERS
from burstsr.burst.pipeline import MergeConfig, merge_burst
from burstsr.burst.synth import write_pairs
from burstsr.burst.warp import INTERPOLATIONS
from burstsr.device import DEVICES, resolve_device
from burstsr.errors import BurstsrError, InputError, OutputError
from burstsr.io import (
    WRITE_DEPTHS,
    check_output,
    list_frames,
    load_burst,
    read_image,
    write_image,
    write_json,
)
from burstsr.refiner.checkpoint import load_generator, load_resume
from burstsr.refiner.enhance import enhance_image
from burstsr.refiner.losses import VGG_LAYERS
from burstsr.refiner.train import TrainConfig
from burstsr.refiner.train import train as train_refiner

log = logging.getLogger("burstsr")


class _Group(click.Group):
    """A click group whose errors, ours and click's, are a single ``Error: ...`` line, exit 2."""

    def main(self, *args, **kwargs):  # noqa: D102
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(130)
        except click.ClickException as exc:
            click.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(2 if isinstance(exc, click.UsageError) else max(exc.exit_code, 1))
        except BurstsrError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)
        sys.exit(code if isinstance(code, int) else 0)


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(message)s" if not verbose else "%(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger("burstsr")
    root.handlers[:] = [handler]
    root.setLevel(level)


@contextmanager
def _progress_bar(label: str, total: int, enabled: bool):
    """A progress bar on stderr (drawn only on a terminal); yields a callback for the library."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(
        length=total, label=label, file=sys.stderr, show_pos=True, item_show_func=lambda s: s
    ) as bar:

        def update(done: int, _total: int, name: str) -> None:
            bar.current_item = name
            bar.update(done - bar.pos)

        yield update


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="burstsr")
@click.option("-v", "--verbose", count=True, help="More detail (debug messages).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors; no progress bar.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """burstsr: align and merge handheld bursts into one clean image."""
    _setup_logging(verbose, quiet)
    ctx.obj = {"quiet": quiet}


_defaults = MergeConfig()


@cli.command()
@click.argument("source_folder", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path("result.png"),
    show_default=True,
    help="Merged image (.png or .tif for 16 bit; .jpg, .webp, .bmp).",
)
@click.option(
    "--align",
    "align",
    type=click.Choice(ALIGN_METHODS),
    default=_defaults.align,
    show_default=True,
    help="ORB+RANSAC estimate refined by ECC (auto), or one alone.",
)
@click.option(
    "--motion",
    type=click.Choice(list(MOTIONS)),
    default=_defaults.motion,
    show_default=True,
    help="Motion model between frames.",
)
@click.option(
    "--reference",
    default=_defaults.reference,
    show_default=True,
    help="Reference frame: first, sharpest, or a 0-based index in sort order.",
)
@click.option(
    "--merge",
    "merge",
    type=click.Choice(list(MERGERS)),
    default=_defaults.merge,
    show_default=True,
    help="How aligned frames are combined.",
)
@click.option(
    "--interpolation",
    type=click.Choice(INTERPOLATIONS),
    default=_defaults.interpolation,
    show_default=True,
    help="Warp resampling.",
)
@click.option(
    "--min-score",
    type=click.FloatRange(-1, 1),
    default=_defaults.min_score,
    show_default=True,
    help="Frames whose aligned correlation is lower are left out.",
)
@click.option(
    "--device",
    type=click.Choice(DEVICES),
    default="auto",
    show_default=True,
    help="Where warping and merging run.",
)
@click.option(
    "--bit-depth",
    type=click.Choice(["8", "16"]),
    default=None,
    help="Output bits per sample [default: 16 for 16-bit or RAW input, else 8].",
)
@click.option("--overwrite", is_flag=True, help="Replace the output file if it exists.")
@click.option("--skip-bad", is_flag=True, help="Leave out unreadable files instead of stopping.")
@click.option(
    "--report",
    type=click.Path(path_type=Path),
    default=None,
    help="Write a JSON report (per-frame transform, score, timings).",
)
@click.option(
    "--save-aligned",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write every aligned frame into this folder.",
)
@click.pass_context
def merge(
    ctx: click.Context,
    source_folder: Path,
    output: Path,
    align: str,
    motion: str,
    reference: str,
    merge: str,
    interpolation: str,
    min_score: float,
    device: str,
    bit_depth: str | None,
    overwrite: bool,
    skip_bad: bool,
    report: Path | None,
    save_aligned: Path | None,
) -> None:
    """Align every frame in SOURCE_FOLDER to a reference and merge them into one image."""
    depth = int(bit_depth) if bit_depth else None
    burst = load_burst(source_folder)
    check_output(output, inputs=burst.paths, overwrite=overwrite, bit_depth=depth)
    if report is not None:
        check_output(report, inputs=burst.paths, overwrite=overwrite, image=False)
    config = MergeConfig(
        align=align,
        motion=motion,
        reference=reference,
        merge=merge,
        interpolation=interpolation,
        min_score=min_score,
        skip_bad=skip_bad,
    )
    dev = resolve_device(device)
    log.debug("device: %s", dev)
    started = time.perf_counter()
    with _progress_bar("Merging", len(burst), not ctx.obj["quiet"]) as progress:
        result = merge_burst(
            burst, config=config, device=dev, progress=progress, save_aligned=save_aligned
        )
    result.write(output, bit_depth=depth)
    if report is not None:
        write_json(report, result.report())
    log.info(
        "merged %d of %d frames into %s in %.1f s",
        result.used,
        len(result.frames),
        output,
        time.perf_counter() - started,
    )


def main() -> None:
    """Console entry point."""
    cli(prog_name="burstsr")


# ---------------------------------------------------------------------------------------------
# synth: HR images -> simulated bursts -> merges -> training pairs


@cli.command()
@click.argument("hr_dir", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    required=True,
    help="Pairs folder to write (<scene>/{frames/, result.png, HR.png, meta.json}).",
)
@click.option("--frames", type=click.IntRange(2, 64), default=8, show_default=True)
@click.option(
    "--scale",
    type=click.Choice(["1", "2", "3", "4", "8"]),
    default="4",
    show_default=True,
    help="Area downsampling from HR to the frames.",
)
@click.option(
    "--noise",
    type=click.FloatRange(0, 1),
    default=0.02,
    show_default=True,
    help="Read noise standard deviation.",
)
@click.option(
    "--shot-noise",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Shot noise: variance grows by this times the signal.",
)
@click.option(
    "--shift",
    type=click.FloatRange(0),
    default=2.0,
    show_default=True,
    help="Largest handheld shift, in frame pixels.",
)
@click.option(
    "--rotate",
    type=click.FloatRange(0),
    default=1.0,
    show_default=True,
    help="Largest handheld rotation, in degrees.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Write into a pairs folder that has scenes.")
@click.pass_context
def synth(
    ctx: click.Context,
    hr_dir: Path,
    out: Path,
    frames: int,
    scale: str,
    noise: float,
    shot_noise: float,
    shift: float,
    rotate: float,
    seed: int,
    overwrite: bool,
) -> None:
    """Simulate handheld bursts of the images in HR_DIR, merge them, and write training pairs."""
    sources = list_frames(hr_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise OutputError(f"{out}: not empty; pass --overwrite to add or replace scenes")
    with _progress_bar("Synthesising", len(sources), not ctx.obj["quiet"]) as progress:
        written = write_pairs(
            hr_dir,
            out,
            frames=frames,
            scale=int(scale),
            noise=noise,
            shot_noise=shot_noise,
            shift=shift,
            rotate=rotate,
            seed=seed,
            progress=progress,
        )
    log.info("wrote %d pairs to %s", len(written), out)


# ---------------------------------------------------------------------------------------------
# train: pairs -> refiner checkpoints

_train = TrainConfig()


@cli.command()
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
            vgg_weights=str(vgg) if vgg else None,
            val_dir=str(val_dir) if val_dir else None,
            **options,
        )
    resolve_device(config.device)
    with _progress_bar("Training", config.steps, not ctx.obj["quiet"]) as progress:

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


@cli.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Output file (or folder, for a folder in) [default: NAME_xS.png here; "
    "enhanced/ for a folder].",
)
@click.option(
    "--model",
    type=click.Path(path_type=Path),
    default=None,
    help="A run folder (its best.pt) or a .pt checkpoint.",
)
@click.option(
    "--tile",
    type=click.IntRange(0),
    default=512,
    show_default=True,
    help="Tile size in input pixels (0: whole image at once).",
)
@click.option(
    "--tile-pad",
    type=click.IntRange(0),
    default=None,
    help="Context around each tile [default: the network's receptive radius].",
)
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--half", is_flag=True, help="fp16 inference (CUDA only).")
@click.option(
    "--bit-depth",
    type=click.Choice(["8", "16"]),
    default=None,
    help="Output bits per sample [default: as the input].",
)
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@click.pass_context
def enhance(
    ctx: click.Context,
    source: Path,
    output: Path | None,
    model: Path | None,
    tile: int,
    tile_pad: int | None,
    device: str,
    half: bool,
    bit_depth: str | None,
    overwrite: bool,
) -> None:
    """Restore and upscale SOURCE (an image, or a folder of images) with the refiner."""
    if model is None:
        raise click.UsageError("--model is required: a run folder or a .pt checkpoint")
    dev = resolve_device(device)
    generator = load_generator(model, device=dev)
    scale = generator.config.scale
    if source.is_dir():
        inputs = list_frames(source)
        folder = output or Path("enhanced")
        if folder.exists() and not folder.is_dir():
            raise OutputError(f"{folder}: exists and is not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        jobs = [(p, folder / f"{p.stem}_x{scale}.png") for p in inputs]
    else:
        if not source.is_file():
            raise InputError(f"{source}: no such file or folder")
        jobs = [(source, output or Path(f"{source.stem}_x{scale}.png"))]
    depth = int(bit_depth) if bit_depth else None
    for _, dst in jobs:
        check_output(dst, inputs=[p for p, _ in jobs], overwrite=overwrite, bit_depth=depth)
    for src, dst in jobs:
        image = read_image(src)
        label = f"Enhancing {src.name}"
        with _progress_bar(label, 100, not ctx.obj["quiet"]) as progress:

            def update(done: int, total: int) -> None:
                if progress is not None:
                    progress(round(100 * done / total), 100, f"tile {done}/{total}")

            result = enhance_image(
                generator, image.pixels, tile=tile, tile_pad=tile_pad, half=half, progress=update
            )
        out_depth = depth or (16 if image.bit_depth > 8 else 8)
        out_depth = min(out_depth, max(WRITE_DEPTHS.get(dst.suffix.lower(), (8,))))
        write_image(dst, result[:, :, 0] if image.gray else result, bit_depth=out_depth)
        log.info("%s -> %s (x%d, %dx%d)", src, dst, scale, result.shape[1], result.shape[0])
