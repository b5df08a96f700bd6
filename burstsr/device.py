"""Choosing the torch device once, from the ``--device`` option.

torch is imported only when a device is actually resolved: ``burstsr merge`` on a machine
without CUDA decides on the CPU path (OpenCV, no torch) from :func:`cuda_possible` alone.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import os
import sys
from typing import TYPE_CHECKING

from burstsr.errors import InputError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda")


def cuda_possible() -> bool:
    """False when this machine certainly has no CUDA driver (so torch cannot use CUDA); True
    when it may have one, which only torch itself can settle. Never imports torch."""
    if "torch" in sys.modules:
        return sys.modules["torch"].cuda.is_available()
    if sys.platform == "darwin":
        return False
    if sys.platform.startswith("linux"):
        markers = ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg")
        return any(os.path.exists(m) for m in markers)
    return ctypes.util.find_library("nvcuda") is not None


def device_name(name: str = "auto") -> str:
    """``--device`` -> ``"cpu"`` or ``"cuda[:N]"``, without importing torch when the answer is
    the CPU. Errors as :func:`resolve_device`."""
    name = name.strip().lower()
    if name == "cpu" or (name == "auto" and not cuda_possible()):
        return "cpu"
    return str(resolve_device(name))


def resolve_device(name: str = "auto") -> torch.device:
    """Turn ``"auto" | "cpu" | "cuda" | "cuda:N"`` into a ``torch.device``.

    ``auto`` picks CUDA when it is available and the CPU otherwise. Asking for CUDA on a machine
    without it is an :class:`InputError`, never a silent fall-back.
    """
    import torch

    name = name.strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise InputError(f"--device {name}: CUDA is not available here; use --device cpu")
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(
                f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) present"
            )
        return dev
    raise InputError(f"--device {name}: expected one of auto, cpu, cuda")


def autocast(device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager:
    """Mixed precision for training, on CUDA only (fp16 autocast); a no-op context elsewhere."""
    if enabled and device.type == "cuda":
        import torch

        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX: recent Xeons, AMD
    Zen 4 and later), where bfloat16 convolutions run about twice as fast as float32 ones;
    elsewhere they are emulated, and slower."""
    import torch

    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def check_half(device: torch.device) -> None:
    """``--half`` runs inference in fp16 on CUDA and in bfloat16 on a CPU that has it natively;
    refuse it elsewhere, where it would be slower or unsupported.

    Raises:
        InputError: a CPU without native bfloat16, or another kind of device.
    """
    if device.type == "cuda":
        return
    if device.type == "cpu":
        if not cpu_has_bf16():
            raise InputError(
                "--half: this CPU has no native bfloat16 (AVX512-BF16 or AMX), where half "
                "precision would be slower; drop --half"
            )
        return
    raise InputError(f"--half: half precision runs on CUDA or the CPU, not on {device.type}")


def layout_for_half(network: torch.nn.Module, device: torch.device, half: bool) -> None:
    """Switch ``network``'s weights, in place, to the layout it runs fastest in with ``half``:
    channels last for bfloat16 convolutions on the CPU; nothing otherwise."""
    if half and device.type == "cpu":
        import torch

        network.to(memory_format=torch.channels_last)


def inference_precision(device: torch.device, half: bool) -> contextlib.AbstractContextManager:
    """Inference in half precision when ``half``: fp16 autocast on CUDA, bfloat16 autocast on
    the CPU (see :func:`check_half`); a no-op context otherwise."""
    if not half:
        return contextlib.nullcontext()
    import torch

    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return torch.autocast("cpu", dtype=torch.bfloat16)
