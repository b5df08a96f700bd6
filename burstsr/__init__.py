"""burstsr: align and merge handheld bursts into one clean, detailed image.

>>> import burstsr
>>> result = burstsr.merge_burst("my_burst/")       # load -> align -> merge
>>> result.write("result.png")
"""

from burstsr.burst.align import Alignment, AlignOptions, estimate_transform
from burstsr.burst.merge import MERGERS, Merged, merge_frames
from burstsr.burst.pipeline import MergeConfig, merge_burst
from burstsr.burst.result import MergeResult
from burstsr.burst.warp import warp_frame
from burstsr.device import resolve_device
from burstsr.errors import AlignmentError, BurstsrError, CheckpointError, InputError, OutputError
from burstsr.io import Burst, Image, load_burst, read_image, write_image
from burstsr.refiner.checkpoint import load_generator
from burstsr.refiner.enhance import enhance_image

__version__ = "0.1.0"

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
