"""burstsr: align and merge handheld bursts into one clean, detailed image.

>>> import burstsr
>>> result = burstsr.merge_burst("my_burst/")       # load -> align -> merge
>>> result.write("result.png")

The names that need torch (the refiner, the torch merges) are imported on first use, so
``import burstsr`` and a CPU merge do not pay for loading torch.
"""

from importlib import import_module

from burstsr.burst.align import Alignment, AlignOptions, estimate_transform
from burstsr.burst.config import MergeConfig
from burstsr.burst.pipeline import merge_burst
from burstsr.burst.result import MergeResult
from burstsr.device import resolve_device
from burstsr.errors import AlignmentError, BurstsrError, CheckpointError, InputError, OutputError
from burstsr.io import Burst, Image, load_burst, read_image, write_image

__version__ = "0.1.0"

_LAZY = {
    "MERGERS": "burstsr.burst.merge",
    "Merged": "burstsr.burst.merge",
    "merge_frames": "burstsr.burst.merge",
    "warp_frame": "burstsr.burst.warp",
    "load_generator": "burstsr.refiner.checkpoint",
    "enhance_image": "burstsr.refiner.enhance",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'burstsr' has no attribute {name!r}")


__all__ = [
    "MERGERS",
    "AlignOptions",
    "Alignment",
    "AlignmentError",
    "Burst",
    "BurstsrError",
    "CheckpointError",
    "Image",
    "InputError",
    "MergeConfig",
    "MergeResult",
    "Merged",
    "OutputError",
    "enhance_image",
    "estimate_transform",
    "load_burst",
    "load_generator",
    "merge_burst",
    "merge_frames",
    "read_image",
    "resolve_device",
    "warp_frame",
    "write_image",
]
