"""The ``burstsr`` command line: parse options, resolve paths and device, call one library
function, report. No numerics here. Every error is one line on stderr and exit code 2.

    burstsr merge SOURCE_FOLDER      frames -> one merged image        (cli/merge.py)
    burstsr run SOURCE_FOLDER        merge, then enhance                (cli/run.py)
    burstsr synth HR_DIR --out DIR   simulated bursts -> training pairs (cli/synth.py)
    burstsr train --pairs DIR        train the refiner                  (cli/train.py)
    burstsr enhance IMAGE            restore and upscale with the refiner (cli/enhance.py)
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from contextlib import contextmanager

import click

from burstsr.errors import BurstsrError

log = logging.getLogger("burstsr")


class _Group(click.Group):
    """A click group whose errors, ours and click's, are a single ``Error: ...`` line, exit 2."""

    def main(self, *args, **kwargs):  # noqa: D102
        kwargs["standalone_mode"] = False
        _stop_on_termination()
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
        except OSError as exc:  # a file system refusal the checks could not foresee
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"Error: {where}{exc.strerror or exc}", err=True)
            sys.exit(2)
        sys.exit(code if isinstance(code, int) else 0)


def _stop_on_termination() -> None:
    """SIGTERM and SIGHUP (``kill``, a closed terminal, a job's time limit) stop a command as
    Ctrl-C does, so its clean-up runs: an output being written (a PNG streamed as its rows are
    made, for the length of the refiner's work) is removed, never left half-written."""
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), stop)


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
def progress_bar(label: str, total: int, enabled: bool):
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
    ctx.obj = {"quiet": quiet, "verbose": verbose}


def _late_quiet(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.obj["quiet"] = True
        _setup_logging(ctx.obj["verbose"], True)


def _late_verbose(ctx: click.Context, _param: click.Parameter, value: int) -> None:
    if value:
        ctx.obj["verbose"] += value
        _setup_logging(ctx.obj["verbose"], ctx.obj["quiet"])


def command(**kwargs):
    """``cli.command`` with ``-v``/``-q`` accepted after the subcommand's name as well."""

    def decorate(function):
        function = click.option(
            "-q",
            "--quiet",
            is_flag=True,
            expose_value=False,
            callback=_late_quiet,
            help="Only warnings and errors; no progress bar (also before the command).",
        )(function)
        function = click.option(
            "-v",
            "--verbose",
            count=True,
            expose_value=False,
            callback=_late_verbose,
            help="More detail (also before the command).",
        )(function)
        return cli.command(**kwargs)(function)

    return decorate


from burstsr.cli import enhance as _enhance  # noqa: E402,F401
from burstsr.cli import inspect as _inspect  # noqa: E402,F401
from burstsr.cli import merge as _merge  # noqa: E402,F401  (registers the commands)
from burstsr.cli import run as _run  # noqa: E402,F401
from burstsr.cli import synth as _synth  # noqa: E402,F401
from burstsr.cli import train as _train  # noqa: E402,F401


def main() -> None:
    """Console entry point."""
    cli(prog_name="burstsr")
