"""The ``burstsr`` command line: parse options, resolve paths and device, call one library
function, report. No numerics here. Every error is one line on stderr and exit code 2."""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import click

from burstsr.burst.align import ALIGN_METHODS, MOTIONS
from burstsr.burst.merge import MERGERS
from burstsr.burst.pipeline import MergeConfig, merge_burst
from burstsr.burst.warp import INTERPOLATIONS
from burstsr.device import DEVICES, resolve_device
from burstsr.errors import BurstsrError
from burstsr.io import check_output, load_burst, write_json

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
