"""torchrun with two CPU processes (gloo): same curve as one process, and resumable."""

import json
import shutil
import subprocess
import sys
import time

import pytest

from tests.helpers import run_cli

ARGS = ["--eval-every", "10", "--hidden", "32", "--batch-size", "8", "--seq-len", "32", "--dropout", "0",
        "--precision", "fp32", "--quiet"]
TOLERANCE = 1e-4
"""Losses of 1 and 2 processes agree to this (absolute, nats): only the order of additions differs."""

pytestmark = pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun is not installed")


def torchrun(*args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "genseq", "train", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def losses(run) -> dict[int, tuple[float, float]]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: (r["train_loss"], r["val_loss"]) for r in records if r["step"] % 10 == 0}


@pytest.fixture(scope="module")
def single_process_run(tmp_path_factory, text_file):
    run = tmp_path_factory.mktemp("runs") / "one"
    result = run_cli("train", str(text_file), "--steps", "60", "--name", str(run), *ARGS)
    assert result.returncode == 0, result.stderr
    return run


def test_two_processes_follow_the_single_process_curve(tmp_path, text_file, single_process_run):
    run = tmp_path / "two"
    process = torchrun(str(text_file), "--steps", "60", "--name", str(run), *ARGS)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    one, two = losses(single_process_run), losses(run)
    assert sorted(two) == [10, 20, 30, 40, 50, 60]
    for step in one:
        assert two[step] == pytest.approx(one[step], abs=TOLERANCE)
    assert json.loads((run / "config.json").read_text())["processes"] == 2


def test_a_stopped_two_process_run_resumes_on_the_same_curve(tmp_path, text_file, single_process_run):
    run = tmp_path / "two"
    process = torchrun(str(text_file), "--steps", "60", "--name", str(run), *ARGS)
    while process.poll() is None and not (run / "last.pt").exists():
        time.sleep(0.05)
    workers = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
    for pid in workers:  # what a cluster's scheduler does: SIGTERM every worker
        subprocess.run(["kill", "-TERM", pid])
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    stopped_at = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["step"]
    assert stopped_at < 60 and "genseq train --resume" in stderr
    resumed = torchrun("--resume", str(run), "--quiet")
    _, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    one, two = losses(single_process_run), losses(run)
    for step in one:  # validation losses: train losses average over a window the stop cut in two
        assert two[step][1] == pytest.approx(one[step][1], abs=TOLERANCE), step
