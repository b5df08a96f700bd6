"""The example burst shipped in examples/ merges as its README promises."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from burstsr.burst.synth import corner_error
from burstsr.cli import cli
from burstsr.io import read_image
from burstsr.metrics import psnr

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.skipif(not (EXAMPLES / "burst").is_dir(), reason="examples/ not present")
def test_demo_merge_of_the_example_burst(tmp_path):
    out, report = tmp_path / "result.png", tmp_path / "report.json"
    result = CliRunner().invoke(
        cli, ["-q", "merge", str(EXAMPLES / "burst"), "-o", str(out), "--report", str(report)]
    )
    assert result.exit_code == 0, result.output
    clean = read_image(EXAMPLES / "burst_clean_reference.png").pixels
    frame0 = read_image(EXAMPLES / "burst" / "frame_00.png").pixels
    merged = read_image(out).pixels
    b = (slice(4, -4), slice(4, -4))
    gain = psnr(merged[b], clean[b]) - psnr(frame0[b], clean[b])
    assert gain > 5.0  # 8 frames: at most 9 dB, less the resampling of aliased frames
    truth = json.loads((EXAMPLES / "burst" / "truth.json").read_text())["transforms"]
    frames = json.loads(report.read_text())["frames"]
    assert all(f["used"] for f in frames)
    errors = [
        corner_error(
            np.array(f["transform"]), np.array(truth[Path(f["path"]).name]), clean.shape[:2]
        )
        for f in frames
    ]
    assert max(errors) < 0.1
