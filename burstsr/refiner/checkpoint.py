"""Checkpoints that load without unpickling code.

A generator checkpoint is one ``.pt`` file holding only tensors and plain values (loaded with
``torch.load(weights_only=True)``): ``{"format", "version", "config", "train_args",
"metrics", "state_dict"}`` and, for a model trained from another, ``"start"`` (the model its
``--strength 0`` gives: :func:`start_for`), with a ``.json`` beside it that repeats all but the
weights for people. Resume state (optimisers, schedulers, step, random generators,
discriminator, EMA) is a separate file, ``resume.pt``, of the same kind. Every write is atomic.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import torch

from burstsr.errors import CheckpointError
from burstsr.io import write_bytes
from burstsr.refiner.dial import Dial, check_dial_pair
from burstsr.refiner.networks import Generator, GeneratorConfig, build_generator
from burstsr.refiner.registry import DEFAULT_MODEL, DEFAULT_RUN_MODEL, SHIPPED, WEIGHTS

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_RUN_MODEL",
    "SHIPPED",
    "WEIGHTS",
    "load_generator",
    "load_resume",
    "resolve_model_path",
    "save_generator",
    "save_resume",
    "start_for",
]

FORMAT = "burstsr-generator"
VERSION = 1


def save_generator(
    path: str | os.PathLike,
    generator: Generator,
    *,
    train_args: dict | None = None,
    metrics: dict | None = None,
    start: str | None = None,
) -> Path:
    """Write ``generator`` (config + weights) to ``path`` (``.pt``) and ``path.json``;
    ``start``: the model its ``--strength`` dial starts from (:func:`start_for`)."""
    if isinstance(generator, Dial):  # two networks: their outputs are blended, not their weights
        raise TypeError("a --strength dial is two models; save each of them")
    path = Path(path)
    state = {k: v.detach().cpu().clone() for k, v in generator.state_dict().items()}
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": generator.config.to_dict(),
        "train_args": train_args or {},
        "metrics": metrics or {},
        "state_dict": state,
    }
    if start:
        payload["start"] = start
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_bytes(path, buffer.getvalue())
    info = {k: v for k, v in payload.items() if k != "state_dict"}
    write_bytes(path.with_suffix(".json"), (json.dumps(info, indent=2) + "\n").encode())
    return path


def resolve_model_path(path: str | os.PathLike) -> Path:
    """A shipped model's name (a key of ``SHIPPED``), a checkpoint file, or a run folder (its
    ``best.pt``, else ``last.pt``) -> the checkpoint file."""
    if isinstance(path, str) and path in SHIPPED:
        if not SHIPPED[path].is_file():
            available = [n for n, f in SHIPPED.items() if f.is_file()] or ["none"]
            raise CheckpointError(
                f"--model {path}: this burstsr ships no {path} model "
                f"(shipped: {', '.join(available)}); give a checkpoint PATH"
            )
        return SHIPPED[path]
    path = Path(path)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f"{path}: no best.pt or last.pt in this run folder")
    if not path.is_file():
        raise CheckpointError(
            f"{path}: no such model file or run folder (shipped models: {', '.join(SHIPPED)})"
        )
    return path


def _load(path: Path) -> dict:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, bad pickle, unsupported types: all "corrupt"
        raise CheckpointError(
            f"{path}: corrupt or truncated checkpoint ({type(exc).__name__})"
        ) from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: not a burstsr checkpoint")
    return data


def load_generator(
    path: str | os.PathLike,
    *,
    device: torch.device | str = "cpu",
    scale: int | None = None,
    strength: float | None = None,
) -> Generator | Dial:
    """Load a generator for inference (``eval()`` mode) on ``device``.

    Args:
        path: a shipped model's name, a ``.pt`` checkpoint or a run folder (its ``best.pt``,
            else ``last.pt``).
        scale: when given, the model must upscale by exactly this factor.
        strength: for a model trained from another (``train --init``, e.g. an adversarial
            model from a fidelity one): ``0`` loads the model it started from, ``1`` this one,
            and a value in between a :class:`~burstsr.refiner.dial.Dial` that blends their
            outputs (and runs as one generator does).

    Raises:
        CheckpointError: missing, corrupt or truncated file, not a burstsr generator, weights that
            do not fit the stated architecture, a scale other than ``scale``, or a ``strength``
            for a model with no model to blend with, or with one whose output differs in kind.
    """
    generator, data = _load_generator(path, scale)
    if strength is not None:
        if not 0.0 <= strength <= 1.0:
            raise CheckpointError(f"--strength {strength:g}: expected a value from 0 to 1")
        start, base = _load_start(path, data, scale)
        why = check_dial_pair(start.config, generator.config)
        if why:
            raise CheckpointError(
                f"--strength: model {path} cannot be blended with the model it started from "
                f"({base}): {why}"
            )
        if strength == 0:
            generator = start
        elif strength < 1:
            generator = Dial(start, generator, strength)  # moved and put in eval() below
    return generator.to(device).eval()


def _load_start(path: str | os.PathLike, data: dict, scale: int | None) -> tuple[Generator, str]:
    """The model that checkpoint ``data`` (of ``path``) was trained from, for ``--strength``,
    and its name as recorded; an error where it has none, or only itself (trained from an
    earlier model of the same name, which it replaced)."""
    base = _start(data)
    if not base:
        raise CheckpointError(
            f"--strength: model {path} was not trained from another model, so there is "
            f"nothing to blend it with"
        )
    try:
        start_path = resolve_model_path(base)
        if start_path.resolve() != resolve_model_path(path).resolve():
            return _load_generator(start_path, scale)[0], base
    except CheckpointError as exc:
        raise CheckpointError(f"--strength: the model {path} started from: {exc}") from None
    raise CheckpointError(
        f"--strength: model {path} was trained from an earlier {base}, which it replaced, "
        f"so there is nothing to blend it with"
    )


def load_adversarial_start(
    path: str | os.PathLike, *, device: torch.device | str = "cpu"
) -> Generator | None:
    """The model an adversarially trained ``path`` started from (``train --init``; what
    ``--strength 0`` gives), for questions that its invented texture would confound: ``run
    --back-project auto`` asks whether the frames look area-sampled, and texture sharper than
    any frame reads as frames softer than that. None for a model trained without an adversarial
    phase (pixel and content losses only), or whose start cannot be loaded."""
    try:
        start = _adversarial_start(_load(resolve_model_path(path)))
        if start is None:
            return None
        generator, _ = _load_generator(start, None)  # what strength 0 computes, read once
    except CheckpointError:
        return None
    return generator.to(device).eval()


def start_for(init: str) -> str:
    """The model that a model trained with ``train --init init`` starts its ``--strength`` dial
    from: ``init``, or, where ``init`` is itself adversarial (a GAN trained further), the model
    ``init``'s dial starts from, so that ``--strength 0`` stays the fidelity model (a GAN
    fine-tuned from ``gan`` and shipped as ``gan`` would otherwise start from itself)."""
    try:
        return _adversarial_start(_load(resolve_model_path(init))) or init
    except CheckpointError:
        return init


def _adversarial_start(data: dict) -> str | None:
    """The start of a checkpoint trained past its pixel-loss pre-training with an adversarial
    loss; None for any other."""
    args = data.get("train_args", {})
    adversarial = (args.get("adv_weight") or 0) > 0 and (args.get("steps") or 0) > (
        args.get("pretrain_steps") or 0
    )
    return _start(data) if adversarial else None


def _start(data: dict) -> str | None:
    """The model a checkpoint's ``--strength 0`` gives: its ``start``, else ``--init``'s."""
    return data.get("start") or data.get("train_args", {}).get("init") or None


def _load_generator(path: str | os.PathLike, scale: int | None) -> tuple[Generator, dict]:
    path = resolve_model_path(path)
    data = _load(path)
    if data.get("format") != FORMAT or "state_dict" not in data or "config" not in data:
        raise CheckpointError(f"{path}: not a burstsr generator checkpoint")
    if data.get("version", 0) > VERSION:
        raise CheckpointError(f"{path}: made by a newer burstsr (format {data['version']})")
    try:
        config = GeneratorConfig(**data["config"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: unknown architecture ({exc})") from None
    if scale is not None and config.scale != scale:
        raise CheckpointError(
            f"{path}: the model upscales x{config.scale}, x{scale} was asked "
            f"for; choose a x{scale} model"
        )
    generator = build_generator(config)
    try:
        generator.load_state_dict(data["state_dict"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"{path}: weights do not match the architecture ({first})") from None
    return generator, data


def save_resume(path: str | os.PathLike, state: dict) -> Path:
    """Write a resume state (tensors and plain values only) atomically."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return write_bytes(Path(path), buffer.getvalue())


def load_resume(path: str | os.PathLike) -> dict:
    """Read a resume state written by :func:`save_resume`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no resume state here; was this run started with --out?")
    return _load(path)
