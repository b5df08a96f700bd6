"""benchmarks/datasets.py: unpacking a set from a repository archive, without the network."""

import io
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from datasets import SETS, DataSet, fetch, install_from_archive  # noqa: E402


def _archive(files: dict[str, bytes]) -> bytes:
    """A .tar.gz laid out like GitHub's commit archives: everything under one top folder."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, payload in files.items():
            info = tarfile.TarInfo(f"repo-0123abc/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def _bmp(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="BMP")
    return buffer.getvalue()


def test_a_set_is_unpacked_and_bmp_converted_losslessly(tmp_path):
    rng = np.random.default_rng(0)
    images = {
        f"data/yang91/t{i}.bmp": (rng.random((9, 13, 3)) * 255).astype(np.uint8) for i in (1, 2)
    }
    files = {name: _bmp(px) for name, px in images.items()}
    files["data/other/x.bmp"] = _bmp(images["data/yang91/t1.bmp"])
    files["data/demo/README.md"] = b"licence"
    dataset = DataSet("T91", "o/r", "0123abc", "data/yang91/*.bmp", 2, "training", "MIT",
                      extra=("data/demo/README.md",))  # fmt: skip
    out = install_from_archive(_archive(files), dataset, tmp_path)
    assert [p.name for p in out] == ["README.md", "t1.png", "t2.png"]
    for i in (1, 2):
        back = np.asarray(Image.open(tmp_path / "T91" / f"t{i}.png"))
        assert np.array_equal(back, images[f"data/yang91/t{i}.bmp"])
    # A count that does not match the documented one stops with the set's name.
    wrong = DataSet("T91", "o/r", "0123abc", "data/yang91/*.bmp", 91, "training", "MIT")
    with pytest.raises(SystemExit, match="T91: expected 91"):
        install_from_archive(_archive(files), wrong, tmp_path / "again")
    assert not (tmp_path / "again" / "T91").exists()


def test_fetch_copies_from_a_local_folder(tmp_path):
    (tmp_path / "src" / "Kodak").mkdir(parents=True)
    (tmp_path / "src" / "Kodak" / "kodim01.png").write_bytes(b"x")
    fetch(tmp_path / "data", tmp_path / "src", ["Kodak"])
    assert (tmp_path / "data" / "Kodak" / "kodim01.png").read_bytes() == b"x"
    with pytest.raises(SystemExit, match="Set5"):
        fetch(tmp_path / "data", tmp_path / "src", ["Set5"])
    assert {d.folder.split("/")[0] for d in SETS} == {
        "Set5",
        "Set14",
        "Kodak",
        "BSD200",
        "T91",
        "bursts",
    }
