"""The public image sets the benchmarks, figures and training recipes use: where each comes from,
and fetching them into ``data/`` (what ``make data`` runs).

    python benchmarks/datasets.py list                   # the sets, their sources and terms
    python benchmarks/datasets.py fetch                  # download into data/ (online)
    python benchmarks/datasets.py fetch --from DIR       # copy from a folder laid out alike

Every set is taken from a public GitHub repository at a fixed commit (the archive of that
commit, then the files under one path), so what you fetch is byte for byte what the documented
numbers were measured on. T91 is converted from BMP to PNG (lossless). T91 and BSD200 are for
training; Set5, Set14 and Kodak for evaluation only; the burst is a real handheld phone burst
(CC BY-SA 4.0: its README and manifest stay with it).

The scripts find the sets in ``$BURSTSR_DATA``, else ``data/`` in the repository, else
``../shared/data`` beside it (:func:`data_dir`).
"""

from __future__ import annotations

import argparse
import fnmatch
import io
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCHIVE_URL = "https://codeload.github.com/{repo}/tar.gz/{commit}"
BURST_NAME = "hdrplus_0006_20160722_115157_431"


@dataclass(frozen=True)
class DataSet:
    """``files`` (a glob under the archive's root) of ``repo`` at ``commit``, into ``folder``."""

    folder: str
    repo: str
    commit: str
    files: str
    count: int
    use: str
    terms: str
    extra: tuple[str, ...] = ()  # more files (paths in the archive) copied beside them

    @property
    def url(self) -> str:
        return ARCHIVE_URL.format(repo=self.repo, commit=self.commit)


_DENOISING = ("majedelhelou/denoising_datasets", "58234876fef6f1b56306705c78dfd40cdb837b86")
_DCSCN = ("jiny2001/dcscn-super-resolution", "d382bc30d41c94ac72f8cb148d61cc4864b3b380")
_NO_LICENCE = "no licence stated by the source (collected 'for convenience')"
SETS = (
    DataSet("Set5", *_DENOISING, "CSet5/*.png", 5, "evaluation", _NO_LICENCE),
    DataSet("Set14", *_DENOISING, "CSet14/*.png", 14, "evaluation", _NO_LICENCE),
    DataSet(
        "Kodak",
        "Zelex/images",
        "0b8a89db599a384124fb991b85d40cfd63c73d58",
        "kodak/kodim*.png",
        24,
        "evaluation",
        "Kodak Lossless True Color Image Suite, generally described as free for unrestricted use",
    ),
    DataSet("BSD200", *_DCSCN, "data/bsd200/*.png", 200, "training", "repository MIT licence"),
    DataSet("T91", *_DCSCN, "data/yang91/*.bmp", 91, "training", "repository MIT licence"),
    DataSet(
        f"bursts/{BURST_NAME}",
        "pauline-ongchan/photofold",
        "326241b1a442d58af1ce6069092a637a75e3d9c5",
        "data/demo/hdrplus-static/*",
        8,
        "trying real bursts (7 JPEG frames of 1600x1200)",
        "CC BY-SA 4.0, HDR+ Burst Photography Dataset by Hasinoff et al.; keep README.md "
        "and manifest.json with the frames",
        extra=("data/demo/README.md",),
    ),
)


def data_dir() -> Path:
    """Where the scripts read the sets: ``$BURSTSR_DATA``, else ``data/`` in the repository
    when it exists, else ``../shared/data`` beside the repository."""
    if os.environ.get("BURSTSR_DATA"):
        return Path(os.environ["BURSTSR_DATA"])
    local = ROOT / "data"
    return local if local.is_dir() else ROOT.parent / "shared" / "data"


def _members(archive: tarfile.TarFile, pattern: str) -> dict[str, tarfile.TarInfo]:
    """Regular files whose path below the archive's top folder matches ``pattern``."""
    found = {}
    for member in archive.getmembers():
        parts = member.name.split("/", 1)
        if member.isfile() and len(parts) == 2 and fnmatch.fnmatch(parts[1], pattern):
            found[parts[1]] = member
    return found


def install_from_archive(data: bytes, dataset: DataSet, target: Path) -> list[Path]:
    """Unpack ``dataset``'s files from a GitHub commit archive (``.tar.gz`` bytes) into
    ``target / dataset.folder`` (a temporary folder renamed into place); returns the files."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        members = _members(archive, dataset.files)
        if len(members) != dataset.count:
            raise SystemExit(
                f"{dataset.folder}: expected {dataset.count} files matching {dataset.files} in "
                f"{dataset.url}, found {len(members)}"
            )
        extra = {}
        for name in dataset.extra:
            extra.update(_members(archive, name))
        final = target / dataset.folder
        final.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=final.parent) as tmp:
            staging = Path(tmp) / "set"
            staging.mkdir()
            for name, member in sorted({**members, **extra}.items()):
                payload = archive.extractfile(member).read()
                out = staging / Path(name).name
                if out.suffix.lower() == ".bmp":  # T91: lossless to PNG
                    out = out.with_suffix(".png")
                    payload = _bmp_to_png(payload)
                out.write_bytes(payload)
            if final.exists():
                shutil.rmtree(final)
            staging.rename(final)
    return sorted(final.iterdir())


def _bmp_to_png(payload: bytes) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.open(io.BytesIO(payload)).save(buffer, format="PNG")
    return buffer.getvalue()


def fetch(target: Path, source: Path | None = None, only: list[str] | None = None) -> None:
    """Put every set (or those named in ``only``) into ``target``: copied from ``source`` (a
    folder laid out like ``data/``) when given, else downloaded (one archive per commit)."""
    wanted = [d for d in SETS if not only or d.folder.split("/")[0] in only or d.folder in only]
    archives: dict[str, bytes] = {}
    for dataset in wanted:
        final = target / dataset.folder
        if source is not None:
            origin = source / dataset.folder
            if not origin.is_dir():
                raise SystemExit(f"{origin}: no such folder (from --from {source})")
            if origin.resolve() != final.resolve():
                if final.exists():
                    shutil.rmtree(final)
                shutil.copytree(origin, final)
            print(f"{dataset.folder}: {len(list(final.iterdir()))} files from {origin}")
            continue
        if dataset.url not in archives:
            print(f"downloading {dataset.url} ...", flush=True)
            with urllib.request.urlopen(dataset.url, timeout=120) as response:
                archives[dataset.url] = response.read()
        files = install_from_archive(archives[dataset.url], dataset, target)
        print(f"{dataset.folder}: {len(files)} files ({dataset.use})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the sets, their sources and terms")
    get = sub.add_parser("fetch", help="download (or copy) the sets into a folder")
    get.add_argument("--to", type=Path, default=ROOT / "data", help="[default: data/]")
    get.add_argument("--from", dest="source", type=Path, default=None, help="copy from here")
    get.add_argument("sets", nargs="*", help="only these (e.g. Kodak Set14)")
    args = parser.parse_args(argv)
    if args.command == "list":
        for d in SETS:
            print(f"{d.folder}: {d.count} files, for {d.use}")
            print(f"    {d.url}  ({d.files})")
            print(f"    terms: {d.terms}")
        return
    fetch(args.to, args.source, args.sets)


if __name__ == "__main__":
    sys.exit(main())
