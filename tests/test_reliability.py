"""Crash safety, signals, numerical safety, reproducibility and code-free checkpoint loading,
each shown on a real `python -m genseq` subprocess or a real Trainer."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import generated_text

from genseq import api
from genseq.checkpoint import load_checkpoint
from genseq.errors import CheckpointError
from genseq.training import read_metrics

EVAL_EVERY = 4
SMALL = ["--hidden", "32", "--layers", "1", "--batch-size", "8", "--seq-len", "32", "--quiet"]


def one_cpu() -> None:
    """Pin the child to one core: genseq uses every core it may run on, and two spinning threads on a
    shared two-core machine make each step hundreds of times slower."""
    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "genseq", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            preexec_fn=one_cpu)


def wait_for(condition, seconds: float = 60, poll: float = 0.005) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll)
    return False


def checkpoint_step(run: Path) -> int:
    return load_checkpoint(run / "last.pt")["progress"]["step"]


def logged_steps(run: Path) -> list[int]:
    """Steps of the evaluation records (refused-step events are not counted)."""
    return [r["step"] for r in read_metrics(run) if "event" not in r]


def mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return 0


@pytest.fixture(scope="module")
def small_text(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "small.txt"
    path.write_text(generated_text(20_000, seed=3), encoding="utf-8")
    return path


@pytest.mark.slow
def test_sigkill_at_any_moment_leaves_a_run_that_resumes_without_gaps(tmp_path, small_text):
    run = tmp_path / "run"
    rng = random.Random(20261125)
    first = ["train", str(small_text), "--name", str(run), "--steps", "1000000", "--eval-every", str(EVAL_EVERY),
             *SMALL]
    resume = ["train", "--resume", str(run), "--quiet"]
    kills, mid_write, previous_step, history = 0, 0, 0, []
    started = time.monotonic()
    while kills < 12 or mid_write == 0:
        assert kills < 30, f"no kill landed inside a checkpoint write in {kills} tries"
        before = mtime(run / "last.pt")
        process = start(*(first if kills == 0 else resume))
        if kills % 6 == 5:  # a kill during start-up, before training begins
            time.sleep(rng.uniform(0.2, 1.5))
        else:
            assert wait_for(lambda p=process, b=before: mtime(run / "last.pt") != b or p.poll() is not None)
            assert process.poll() is None, process.stderr.read()
            if kills % 3 == 1:  # the moment a checkpoint is being written
                wait_for(lambda: any(run.glob(".last.pt.*.tmp")), seconds=10, poll=0)
            else:
                time.sleep(rng.uniform(0, 1.2))
        process.kill()
        process.wait()
        kills += 1
        mid_write += (run / f".last.pt.{process.pid}.tmp").exists()
        step = checkpoint_step(run)  # always a complete, loadable checkpoint
        assert step >= previous_step
        assert step >= max(logged_steps(run), default=0) - EVAL_EVERY, "lost more than one checkpoint interval"
        previous_step = step
        history.append(step)

    process = start(*resume)
    before = mtime(run / "last.pt")
    assert wait_for(lambda: mtime(run / "last.pt") != before)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    final = checkpoint_step(run)
    assert stderr.strip() == f"stopped by SIGTERM at step {final}; resume with: genseq train --resume {run}"
    steps = logged_steps(run)
    expected = list(range(EVAL_EVERY, final + 1, EVAL_EVERY))
    assert steps == expected + ([final] if final % EVAL_EVERY else []), "gaps or duplicates in metrics.jsonl"
    assert not list(run.glob(".*.tmp"))
    print(f"\nkills: {kills} ({mid_write} during a checkpoint write), checkpoint steps {history}, final {final}, "
          f"{time.monotonic() - started:.1f} s")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sigint_and_sigterm_save_a_checkpoint_and_name_the_resume_command(tmp_path, small_text, sig):
    run = tmp_path / "run"
    process = start("train", str(small_text), "--name", str(run), "--steps", "1000000", "--eval-every", "50", *SMALL)
    assert wait_for(lambda: (run / "config.json").exists() and process.poll() is None)
    time.sleep(1.0)
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    step = checkpoint_step(run)
    assert step > 0
    assert stderr.strip() == f"stopped by {sig.name} at step {step}; resume with: genseq train --resume {run}"
    assert logged_steps(run)[-1] == step


def test_resume_of_a_folder_without_a_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(CheckpointError, match="holds no last.pt"):
        api.train(resume=tmp_path / "run", progress=False)
    with pytest.raises(CheckpointError, match="no such run folder"):
        api.train(resume=tmp_path / "nothing", progress=False)
