"""A run killed at any moment (kill -9) never leaves a partial image under the output's name."""

import signal
import subprocess
import sys
import time

import pytest

from burstsr.burst.synth import simulate_burst
from burstsr.io import read_image
from burstsr.refiner.registry import SHIPPED

from conftest import texture, write_frames


@pytest.mark.skipif(not SHIPPED["fidelity"].is_file(), reason="no shipped model")
def test_killed_run_leaves_no_partial_output(tmp_path):
    burst = simulate_burst(texture(96, 128), frames=4, scale=1, seed=2)
    write_frames(tmp_path / "b", burst.frames)
    command = [sys.executable, "-m", "burstsr", "-q", "run", str(tmp_path / "b")]
    command += ["--model", "fidelity", "--tile", "32"]
    outcomes = []
    for k, delay in enumerate((0.3, 0.9, 1.5, 2.1, 2.7, 3.3, 60.0)):
        out = tmp_path / f"out{k}.png"
        proc = subprocess.Popen([*command, "-o", str(out)], cwd=tmp_path)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.kill()  # SIGKILL: no clean-up code runs
            proc.wait()
        outcomes.append(proc.returncode)
        if out.exists():  # written whole, or not at all
            assert read_image(out).shape == (384, 512)
    assert outcomes[-1] == 0  # the same command, left alone, completes
    assert any(code != 0 for code in outcomes)  # and some were killed on the way


@pytest.mark.skipif(not SHIPPED["fidelity"].is_file(), reason="no shipped model")
@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or sys.platform == "win32", reason="POSIX")
def test_terminated_run_removes_the_output_it_was_streaming(tmp_path):
    burst = simulate_burst(texture(96, 128), frames=4, scale=1, seed=3)
    write_frames(tmp_path / "b", burst.frames)
    out = tmp_path / "o" / "out.png"
    out.parent.mkdir()
    command = [sys.executable, "-m", "burstsr", "-q", "run", str(tmp_path / "b"), "-o", str(out)]
    command += ["--model", "fidelity", "--tile", "16", "--ensemble", "--no-route"]
    proc = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(out.parent.glob(".out.png.*.part")):  # the refiner has begun writing rows
        assert proc.poll() is None, "finished before it could be stopped"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.terminate()  # SIGTERM
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Aborted." in err
    assert list(out.parent.iterdir()) == []  # neither the output nor its temporary file
