"""``burstsr run``: frames -> merge (on the grid the model reads) -> enhance -> one image."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from burstsr.burst.pipeline import merge_burst
from burstsr.cli import command, progress_bar
from burstsr.cli.merge import check_bayer_options, merge_config, merge_options, pick_raw_path
from burstsr.cli.options import (
    check_sample,
    ensemble_option,
    half_option,
    model_option,
    outscale_options,
    route_options,
    strength_option,
    tile_option,
)
from burstsr.cli.routing import load_routing, report_routing
from burstsr.device import check_half, resolve_device
from burstsr.errors import OutputError
from burstsr.estimate import (
    Estimate,
    back_projection_estimate,
    bayer_estimate,
    check_output_size,
    enhance_estimate,
    merge_estimate,
    outscaled,
    seconds_per_input_pixel,
    warn_if_short_of_memory,
)
from burstsr.io import Burst, check_output, format_depth, load_burst, write_image
from burstsr.io.crop import Crop
from burstsr.io.names import merge_name
from burstsr.io.raw import RAW_EXTENSIONS
from burstsr.refiner.backproject import (
    ITERATIONS,
    MIN_FRAMES,
    Observation,
    burst_observations,
    central_region,
    worth_back_projecting,
)
from burstsr.refiner.backproject import back_project as back_project_onto
from burstsr.refiner.outscale import output_size, resize_to, scale_name
from burstsr.refiner.registry import DEFAULT_RUN_MODEL

if TYPE_CHECKING:
    from collections.abc import Callable

    from burstsr.burst.config import MergeConfig
    from burstsr.burst.result import MergeResult
    from burstsr.refiner.networks import Generator

log = logging.getLogger("burstsr")


@command()
@click.argument("source_folder", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="The final image [default: result_xS.png, S the scale from frames to output].",
)
@functools.partial(merge_options, run=True)
@model_option(DEFAULT_RUN_MODEL)
@tile_option
@half_option
@ensemble_option
@strength_option
@outscale_options
@route_options
@click.option(
    "--back-project",
    "back_project",
    type=click.Choice(["auto", "on", "off"]),
    default="auto",
    show_default=True,
    help="Make the output agree with the frames it came from (iterative back-projection: "
    "moved and made x4 smaller as each frame was, it should give that frame back). auto: "
    "for 4 frames or more that look area-sampled without a lens blur (downscaled photos, "
    "clean sensors; tested on a crop first): +0.5 dB on such simulated bursts and on a "
    "real burst made 4x smaller; phone and camera-like frames are left alone. Not for RAW "
    "bursts; the output is then held whole in memory.",
)
@click.option(
    "--keep-merge",
    is_flag=True,
    help="Also write the merge beside the output: result_grid4.png for a model that reads "
    "merges on the x4 grid, else result.png.",
)
@click.pass_context
def run(
    ctx: click.Context,
    source_folder: Path,
    output: Path | None,
    device: str,
    bit_depth: str | None,
    overwrite: bool,
    model: str,
    tile: int,
    half: bool,
    ensemble: bool,
    strength: float | None,
    keep_merge: bool,
    outscale: float | None,
    width: int | None,
    sample: int | None,
    route: bool,
    route_threshold: float,
    coarse_model: str | None,
    save_route: Path | None,
    crop: Crop | None,
    max_output_mp: float,
    raw_path: str,
    back_project: str,
    **options,
) -> None:
    """Merge the burst in SOURCE_FOLDER, then restore and upscale the merge: the whole job.

    A model made for merges on a finer grid gets the burst merged onto that grid: the default
    model, burst, reads merges on the x4 grid, so --scale is 4 with it and --kernel the one it
    was trained on (giving other values is an error).
    """
    from burstsr.io.png_rows import output_file
    from burstsr.refiner.checkpoint import load_generator
    from burstsr.refiner.enhance import enhance_image, output_shape

    config = merge_config(options)
    depth = int(bit_depth) if bit_depth else None
    dev = resolve_device(device)
    if half:
        check_half(dev)
    generator = load_generator(model, device=dev, strength=strength)
    check_sample(sample, model, generator)
    routing = load_routing(model, generator, route, route_threshold, coarse_model)
    if save_route is not None and routing is None:
        raise click.BadParameter("nothing is routed (--no-route, or no coarse network)",
                                 param_hint="--save-route")  # fmt: skip
    wanted = generator.config.merge_reads()  # merge as the model reads: its grid and kernel
    if wanted:
        for name, value in wanted.items():
            given = getattr(config, name)
            if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE and (
                given != value
            ):
                raise click.BadParameter(
                    f"{given}: model {model} reads merges made with --{name} {value}; "
                    f"drop --{name} or give --{name} {value}",
                    param_hint=f"--{name}",
                )
        config = dataclasses.replace(config, **wanted)
    total = config.scale * generator.config.scale
    output = output or Path(f"result{scale_name(outscale, width, total)}.png")
    burst = load_burst(source_folder, crop=crop)
    raw_path = pick_raw_path(raw_path, burst.paths, crop=crop, save_aligned=None)
    if raw_path == "bayer":
        check_bayer_options(burst.paths, crop=crop, save_aligned=None)
    size = output_size(burst.frame_size(), outscale=outscale, width=width)
    back_project = check_back_project(back_project, burst, generator, size)
    check_output(output, inputs=burst.paths, overwrite=overwrite, bit_depth=depth)
    merged_path = output.parent / merge_name(config.scale)
    if keep_merge:
        if merged_path.resolve() == output.resolve():
            raise OutputError(
                f"{output}: --keep-merge writes {merged_path.name} there; choose another --output"
            )
        check_output(merged_path, inputs=burst.paths, overwrite=overwrite, bit_depth=depth)
    if save_route is not None:
        check_output(save_route, inputs=burst.paths, overwrite=overwrite)
    streamed = output.suffix.lower() == ".png" and size is None and back_project != "on"
    refining = run_estimate(
        burst,
        config,
        generator,
        tile=tile,
        ensemble=ensemble,
        bayer=raw_path == "bayer",
        half=half,
        streamed=streamed,
    )
    estimate = refining
    if back_project == "on":  # auto says it when the frames have been asked
        estimate = back_projection_estimate(refining, len(burst), scale=total)
    estimate = outscaled(estimate, size, generator.config.any_scale)
    check_output_size(estimate, max_output_mp, "merge a region of the frames (--crop X,Y,W,H)")
    log.info("output %s", estimate.describe())
    warn_if_short_of_memory(estimate, log)
    started = time.perf_counter()
    # A PNG output is written as its rows are made; the file ends (and appears) with the block.
    with contextlib.ExitStack() as writing:
        with progress_bar("Merging + enhancing", 100, not ctx.obj["quiet"]) as progress:

            def enhancing(done: int, total: int) -> None:
                if progress is not None:
                    progress(50 + round(50 * done / total), 100, f"tile {done}/{total}")

            result = merge_for_run(burst, config, raw_path, dev, progress)
            if keep_merge:
                result.write(merged_path, bit_depth=depth)
            out_depth = depth or format_depth(output, result.bit_depth)
            enhance = functools.partial(
                enhance_image, generator, tile=tile, half=half, ensemble=ensemble
            )
            observations = frames_to_back_project(
                back_project,
                burst,
                result,
                tester_for_back_projection(back_project, model, generator, enhance),
            )
            out = None
            stream = size is None and observations is None
            if stream:  # written as it comes, in the integers of the file's depth
                shape = output_shape(generator, result.image.shape[:2])
                out = writing.enter_context(output_file(output, shape, out_depth, gray=result.gray))
            refined = enhance(
                result.image,
                confidence=result.confidence,
                routing=routing,
                progress=enhancing,
                out=out,
                size=size,
                seed=sample,
            )
            if observations is not None:
                factor = refined.shape[0] // burst.frame_size()[0]
                projection = back_projection_estimate(
                    dataclasses.replace(refining, seconds=0.0),
                    len(observations),
                    scale=factor,
                    streamed=streamed,
                )
                log.info(
                    "back-projecting onto %d frames (%d iterations): %s",
                    len(observations),
                    ITERATIONS,
                    projection.describe(),
                )
                warn_if_short_of_memory(projection, log)

                def projecting(done: int, total: int) -> None:
                    if progress is not None:
                        progress(100, 100, f"back-projection {done}/{total}")

                refined = back_project_onto(refined, observations, factor, progress=projecting)
        report_routing(routing, result.image, save_route)
        gray, used, frames = result.gray, result.used, len(result.frames)
        del result  # the merge: no longer needed while the output is encoded
        if not stream:
            if size is not None:
                refined = resize_to(refined, size)
            shape = refined.shape[:2]
            write_image(output, refined[:, :, 0] if gray else refined, bit_depth=out_depth)
    log.info(
        "merged %d of %d frames (x%d grid), refined with %s to %dx%d: %s in %.1f s",
        used,
        frames,
        config.scale,
        model if strength is None else f"{model} at --strength {strength:g}",
        shape[1],
        shape[0],
        output,
        time.perf_counter() - started,
    )


def check_back_project(mode: str, burst: Burst, generator: Generator, size) -> str:
    """``--back-project`` before any work: ``on`` is refused where it cannot apply (RAW frames,
    whose merge is in linear light; an any-scale model rendering another size directly);
    ``auto`` becomes ``off`` there. Another model's output is back-projected, then resized."""
    raw = any(p.suffix.lower() in RAW_EXTENSIONS for p in burst.paths)
    rendered = size is not None and generator.config.any_scale
    if mode == "on" and (raw or rendered):
        why = "RAW frames" if raw else "an any-scale model's --outscale or --width"
        raise click.BadParameter(f"on: not for {why}", param_hint="--back-project")
    return "off" if raw or rendered else mode


def tester_for_back_projection(
    mode: str, model: str, generator: Generator, enhance: functools.partial
) -> Callable:
    """What ``auto`` restores its test crop with: ``enhance`` (``generator``'s), or for an
    adversarial model the model it started from (its ``--strength 0``), whose output is as
    sharp as the frames support (:func:`~burstsr.refiner.checkpoint.load_adversarial_start`)."""
    from burstsr.refiner.checkpoint import load_adversarial_start

    if mode != "auto":
        return enhance
    device = next(generator.parameters()).device
    start = load_adversarial_start(model, device=device)
    if start is None:
        return enhance
    log.debug("back-projection's test restores with the model %s started from", model)
    return functools.partial(enhance.func, start, **enhance.keywords)


def frames_to_back_project(
    mode: str, burst: Burst, result: MergeResult, enhance: Callable
) -> list[Observation] | None:
    """The frames to back-project ``run``'s output onto, or None: ``off``; ``auto`` where the
    frames do not look area-sampled (asked of their central region first, each frame read
    whole one at a time: :func:`~burstsr.refiner.backproject.worth_back_projecting`)."""
    if mode == "off":
        return None
    if mode == "auto":
        h, w = burst.frame_size()
        region = central_region(h, w)
        worth, power = worth_back_projecting(
            burst_observations(burst, result.frames, region),
            result.image,
            enhance,
            region,
            grid=result.image.shape[0] // h,
            confidence=result.confidence,
        )
        if not power:
            log.info("back-projection off: %d frames (it needs %d)", result.used, MIN_FRAMES)
        else:
            log.info(
                "back-projection %s: the frames look %s (on a crop, mean squared residual "
                "%.2e without a lens blur, %.2e with 0.2 px)",
                "on" if worth else "off",
                "area-sampled" if worth else "softer than area sampling",
                power[0.0],
                power[0.2],
            )
        if not worth:
            return None
    return burst_observations(burst, result.frames)


def merge_for_run(
    burst: Burst, config: MergeConfig, raw_path: str, device: str, progress: Callable | None
) -> MergeResult:
    """The merge ``run`` refines: in the Bayer domain for ``raw_path`` ``bayer``, else
    :func:`merge_burst` on ``device``; ``progress`` (a bar's update) gets its first half."""

    def merging(done: int, total: int, name: str) -> None:
        if progress is not None:
            progress(round(50 * done / total), 100, name)

    if raw_path == "bayer":
        from burstsr.burst.bayer import merge_bayer

        return merge_bayer(burst.paths, scale=config.scale, config=config, progress=merging)
    return merge_burst(burst, config=config, device=device, progress=merging)


def run_estimate(
    burst: Burst,
    config: MergeConfig,
    generator: Generator,
    *,
    tile: int | None,
    ensemble: bool,
    bayer: bool = False,
    half: bool = False,
    streamed: bool = False,
) -> Estimate:
    """The merge of ``burst`` with ``config`` (``bayer``: in the Bayer domain), then
    ``generator`` on it (``streamed``: its output written as the rows are made): output size,
    time (the model timed on a patch when the output is over 2 MP) and peak memory."""
    device = str(next(generator.parameters()).device)
    merging = merge_estimate(burst.frame_size(), len(burst), config.scale, device, with_torch=True)
    if bayer:
        merging = bayer_estimate(merging, burst.frame_size(), len(burst), config.scale)
    rate = None
    if merging.megapixels * generator.config.scale**2 > 2:
        rate = seconds_per_input_pixel(generator, half=half)
    size = (merging.height, merging.width)
    refining = enhance_estimate(
        generator, size, tile=tile, ensemble=ensemble, rate=rate, streamed=streamed
    )
    return merging.then(refining)
