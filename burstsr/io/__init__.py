"""Files in and out: the only package that knows about paths, bit depths, BGR and RAW.

Inside burstsr an image is ``float32 (H, W, 3)`` RGB in ``[0, 1]`` (``(H, W)`` for gray output).
:mod:`burstsr.io.read` lists and decodes frames (EXIF orientation applied, alpha dropped with a
warning, RAW files decoded with rawpy to 16-bit *linear* RGB); :mod:`burstsr.io.write` checks
outputs before any work and writes them atomically.
"""

from burstsr.io.read import (
    HEIF_EXTENSIONS,
    IMAGE_EXTENSIONS,
    RAW_EXTENSIONS,
    Burst,
    Image,
    image_grid,
    image_size,
    is_frame_file,
    list_frames,
    load_burst,
    natural_key,
    read_image,
)
from burstsr.io.write import (
    GRID_NOTE,
    WRITE_DEPTHS,
    check_folder,
    check_format,
    check_output,
    encode_image,
    format_depth,
    make_folder,
    write_bytes,
    write_image,
    write_json,
)

__all__ = [
    "GRID_NOTE",
    "HEIF_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "RAW_EXTENSIONS",
    "WRITE_DEPTHS",
    "Burst",
    "Image",
    "check_folder",
    "check_format",
    "check_output",
    "encode_image",
    "format_depth",
    "image_grid",
    "image_size",
    "make_folder",
    "is_frame_file",
    "list_frames",
    "load_burst",
    "natural_key",
    "read_image",
    "write_bytes",
    "write_image",
    "write_json",
]
