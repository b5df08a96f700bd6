"""A minimal DNG writer: one uncompressed 16-bit Bayer strip (RGGB, or another 2x2 layout), with
black and white levels, an as-shot white balance, camera colour = linear sRGB. Enough for LibRaw
(rawpy) to decode it; ``burstsr synth --raw`` writes its simulated sensor data with it, and the
tests make RAW bursts with it."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from burstsr.io.write import write_bytes

# XYZ -> linear sRGB (IEC 61966-2-1): as ColorMatrix1 it makes the camera space linear sRGB.
_XYZ_TO_SRGB = [3.2406, -1.5372, -0.4986, -0.9689, 1.8758, 0.0415, 0.0557, -0.2040, 1.0570]


def raw_to_counts(cfa: np.ndarray, *, black: int = 512, white: int = 16383) -> np.ndarray:
    """Linear sensor values in [0, 1] -> uint16 counts between ``black`` and ``white``."""
    return np.round(black + np.clip(cfa, 0.0, 1.0) * (white - black)).astype(np.uint16)


CFA_LAYOUTS = ("RGGB", "BGGR", "GRBG", "GBRG")


def write_dng(
    path: Path,
    cfa: np.ndarray,
    *,
    black: int = 512,
    white: int = 16383,
    pattern: str = "RGGB",
    neutral: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> Path:
    """Write ``cfa`` (uint16 (H, W), raw sensor values in the 2x2 ``pattern``, top-left first)
    as a DNG file, atomically. ``neutral``: the as-shot neutral (camera R, G, B of a white
    object); a raw converter's white-balance gains are its inverse."""
    if pattern not in CFA_LAYOUTS:
        raise ValueError(f"pattern must be one of {CFA_LAYOUTS}, got {pattern!r}")
    h, w = cfa.shape
    data = np.ascontiguousarray(cfa, dtype="<u2").tobytes()
    entries = []  # (tag, type, count, payload bytes)

    def add(tag: int, typ: int, values, fmt: str) -> None:
        payload = b"".join(struct.pack("<" + fmt, v) for v in values)
        entries.append((tag, typ, len(values) if typ != 2 else len(payload), payload))

    def ascii_(tag: int, text: str) -> None:
        entries.append((tag, 2, len(text) + 1, text.encode() + b"\0"))

    def srational(tag: int, values) -> None:
        payload = b"".join(struct.pack("<ii", round(v * 10000), 10000) for v in values)
        entries.append((tag, 10, len(values), payload))

    def rational(tag: int, values) -> None:
        payload = b"".join(struct.pack("<II", round(v * 10000), 10000) for v in values)
        entries.append((tag, 5, len(values), payload))

    add(254, 4, [0], "I")
    add(256, 4, [w], "I")
    add(257, 4, [h], "I")
    add(258, 3, [16], "H")
    add(259, 3, [1], "H")
    add(262, 3, [32803], "H")
    ascii_(271, "burstsr")
    ascii_(272, "synthetic")
    add(273, 4, [0], "I")  # strip offset, patched below
    add(274, 3, [1], "H")
    add(277, 3, [1], "H")
    add(278, 4, [h], "I")
    add(279, 4, [len(data)], "I")
    add(284, 3, [1], "H")
    add(33421, 3, [2, 2], "H")
    add(33422, 1, ["RGB".index(c) for c in pattern], "B")
    add(50706, 1, [1, 4, 0, 0], "B")
    add(50707, 1, [1, 1, 0, 0], "B")
    ascii_(50708, "burstsr synthetic")
    add(50714, 4, [black], "I")
    add(50717, 4, [white], "I")
    srational(50721, _XYZ_TO_SRGB)
    rational(50728, list(neutral))
    add(50778, 3, [21], "H")
    entries.sort()

    ifd_offset = 8
    ifd_size = 2 + 12 * len(entries) + 4
    extra_offset = ifd_offset + ifd_size
    extra = b""
    ifd = struct.pack("<H", len(entries))
    strip_entry_index = [e[0] for e in entries].index(273)
    # Lay out out-of-line values first, then the pixel data.
    offsets = []
    for _tag, _typ, _count, payload in entries:
        if len(payload) > 4:
            offsets.append(extra_offset + len(extra))
            extra += payload + (b"\0" if len(payload) % 2 else b"")
        else:
            offsets.append(None)
    data_offset = extra_offset + len(extra)
    for i, (tag, typ, count, payload) in enumerate(entries):
        if i == strip_entry_index:
            payload = struct.pack("<I", data_offset)
        if offsets[i] is None:
            ifd += struct.pack("<HHI", tag, typ, count) + payload.ljust(4, b"\0")
        else:
            ifd += struct.pack("<HHII", tag, typ, count, offsets[i])
    ifd += struct.pack("<I", 0)
    return write_bytes(Path(path), b"II" + struct.pack("<HI", 42, ifd_offset) + ifd + extra + data)
