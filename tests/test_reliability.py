"""Crash safety, signals, numerical safety, reproducibility and code-free checkpoint loading,
each shown on a real `python -m genseq` subprocess (the CLI in this process where the process proves nothing
more) or a real Trainer."""

from __future__ import annotations

import json
import math
import os
import platform
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from genseq import api
from genseq.errors import CheckpointError, GenseqError
from genseq.lm.checkpoint import load_checkpoint, save_checkpoint
from genseq.lm.config import ModelConfig, TrainConfig
from genseq.lm.training import MAX_BAD_STEPS, Trainer, read_metrics
from tests.helpers import assert_one_line_error, generated_text, run_cli

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
    while kills < 6 or mid_write == 0:
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


def genseq(*args: str, process: bool = False) -> subprocess.CompletedProcess:
    """genseq's CLI with ARGS (`run_cli`); with `process`, `python -m genseq ARGS` on one core, as a user runs it."""
    if not process:
        return run_cli(*args)
    return subprocess.run([sys.executable, "-m", "genseq", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, preexec_fn=one_cpu)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, small_text) -> Path:
    run = tmp_path_factory.mktemp("runs") / "small"
    result = genseq("train", str(small_text), "--name", str(run), "--steps", "20", "--eval-every", "10", *SMALL)
    assert result.returncode == 0, result.stderr
    return run


# -- no code runs from a checkpoint ------------------------------------------------------------


class Plant:
    """Unpickling this object opens (and so creates) the marker file: a stand-in for any code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def test_a_checkpoint_whose_pickle_would_run_code_is_refused(small_run, tmp_path):
    payload = load_checkpoint(small_run / "last.pt")
    live = tmp_path / "live-marker"
    torch.save({**payload, "extra": Plant(live)}, tmp_path / "live.pt")
    torch.load(tmp_path / "live.pt", weights_only=False)["extra"].close()
    assert live.exists(), "the planted object must really run code when unpickled unsafely"

    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pt"
    torch.save({**payload, "extra": Plant(marker)}, evil)
    for command in (["info", str(evil)], ["sample", str(evil), "--length", "5"]):
        assert_one_line_error(genseq(*command), "evil.pt", "refusing to load", "io.open")
    with pytest.raises(CheckpointError, match="refusing to load"):
        api.load(evil)
    assert not marker.exists()


def test_a_float16_export_keeps_the_model_and_refuses_weights_beyond_its_range(small_run, tmp_path):
    full = api.export_checkpoint(small_run / "best.pt", tmp_path / "full.pt")
    half = api.export_checkpoint(small_run / "best.pt", tmp_path / "half.pt", float16=True)
    assert {t.dtype for t in load_checkpoint(half)["model"].values()} == {torch.float16}
    weights = sum(t.numel() for t in load_checkpoint(full)["model"].values())
    assert full.stat().st_size - half.stat().st_size > 1.8 * weights  # two of every four bytes saved
    ids = torch.arange(3, 99).remainder(api.load(full).config.vocab_size)[None]
    logits = [api.load(path).network(ids)[0] for path in (full, half)]
    assert logits[1].dtype == torch.float32
    assert (logits[0] - logits[1]).abs().max() < 0.02

    payload = load_checkpoint(small_run / "best.pt")
    name = next(iter(payload["model"]))
    payload["model"][name] = payload["model"][name] * 0 + 1e6
    save_checkpoint(tmp_path / "huge.pt", payload)  # with the digest of the changed weights
    with pytest.raises(CheckpointError, match=f"{name}.*do not fit float16"):
        api.export_checkpoint(tmp_path / "huge.pt", tmp_path / "out.pt", float16=True)
    assert not (tmp_path / "out.pt").exists()


# -- numerical safety ---------------------------------------------------------------------------


def tiny_trainer(run_dir: Path, steps: int = 40, seed: int = 7, **options) -> Trainer:
    tokens = (np.arange(24_000) * 7 % 11).astype(np.int32) % 8 + 3
    config = TrainConfig(steps=steps, eval_every=10, batch_size=8, seq_len=16, seed=seed, eval_tokens=2000,
                         threads=1, precision="fp32", **options)
    meta = {"tokenizer": {"kind": "char", "chars": "abcdefgh"}, "data": {}}
    return Trainer(ModelConfig(vocab_size=11, hidden_size=32), config, tokens[:20_000], tokens[20_000:], run_dir, meta)


def poison_at(*steps: int):
    """An on_step hook that puts inf into the embedding after the given steps (the next step's loss is inf)."""
    def hook(trainer: Trainer, loss: float) -> None:
        if trainer.progress.step in steps:
            with torch.no_grad():
                trainer.model.embedding.weight[3] = math.inf
    return hook


def events(run: Path) -> list[dict]:
    return [r for r in read_metrics(run) if r.get("event") == "non-finite loss"]


def test_a_non_finite_loss_is_refused_logged_and_the_last_checkpoint_restored(tmp_path):
    losses: list[float] = []
    trainer = tiny_trainer(tmp_path / "run")
    result = trainer.run(on_step=lambda t, loss: (losses.append(loss), poison_at(12)(t, loss)))
    assert result.stopped_by == "budget" and result.progress.step == 40
    assert [s for s, loss in enumerate(losses, 1) if math.isnan(loss)] == [13]
    [event] = events(tmp_path / "run")
    assert event["step"] == 13 and event["lr_scale"] == 0.5 and event["restored"] == str(tmp_path / "run" / "last.pt")
    assert all(math.isfinite(loss) for loss in losses[13:])
    assert trainer.weights_are_finite() and result.progress.lr_scale == 0.5 and result.progress.bad_steps == 0


def test_three_non_finite_losses_in_a_row_stop_with_a_usable_checkpoint(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(GenseqError, match=f"{MAX_BAD_STEPS} non-finite losses in a row at step 15") as caught:
        tiny_trainer(run).run(on_step=poison_at(12, 13, 14))
    assert f"--resume {run}" in str(caught.value)
    assert [(e["step"], e["lr_scale"]) for e in events(run)] == [(13, 0.5), (14, 0.25), (15, 0.125)]
    payload = load_checkpoint(run / "last.pt")
    assert payload["progress"]["step"] == 15 and payload["progress"]["lr_scale"] == 0.125
    assert all(torch.isfinite(t).all() for t in payload["model"].values())
    assert logged_steps(run) == [10, 15]


def test_a_diverging_learning_rate_stops_the_cli_with_one_line_and_finite_weights(tmp_path, small_text):
    run = tmp_path / "run"
    result = genseq("train", str(small_text), "--name", str(run), "--lr", "1e4", "--steps", "300",
                    "--eval-every", "10", *SMALL)
    assert_one_line_error(result, "non-finite losses in a row", f"genseq train --resume {run}")
    assert len(events(run)) >= MAX_BAD_STEPS
    assert all(torch.isfinite(t).all() for t in load_checkpoint(run / "last.pt")["model"].values())
    assert api.load(run / "last.pt").sample(length=5, seed=0)


# -- reproducibility ------------------------------------------------------------------------------


def test_same_seed_gives_an_identical_loss_sequence_for_100_steps(tmp_path):
    curves = []
    for run, seed in [("a", 5), ("b", 5), ("c", 6)]:
        losses: list[float] = []
        tiny_trainer(tmp_path / run, steps=100, seed=seed).run(on_step=lambda t, loss, out=losses: out.append(loss))
        curves.append(losses)
    assert len(curves[0]) == 100 and curves[0] == curves[1] and curves[0] != curves[2]


def test_same_seed_gives_identical_weights_and_byte_identical_samples_from_the_cli(tmp_path, small_text):
    runs = [tmp_path / "a", tmp_path / "b"]
    for run in runs:
        result = genseq("train", str(small_text), "--name", str(run), "--steps", "30", "--eval-every", "10",
                        "--seed", "5", *SMALL, process=True)  # two processes: nothing carried over between them
        assert result.returncode == 0, result.stderr
    weights = [load_checkpoint(run / "last.pt")["model"] for run in runs]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert [r["train_loss"] for r in read_metrics(runs[0])] == [r["train_loss"] for r in read_metrics(runs[1])]
    samples = [run_cli("sample", str(run), "--length", "200", "--seed", seed, "--num-samples", "2", "--json").stdout
               for run, seed in [(runs[0], "3"), (runs[1], "3"), (runs[0], "4")]]
    assert samples[0] == samples[1] != samples[2] and json.loads(samples[0])[0]
    info = run_cli("info", str(runs[0]))
    assert info.returncode == 0 and "seed 5" in info.stdout
    versions = json.loads(run_cli("info", str(runs[0]), "--json").stdout)["versions"]
    assert versions == {"genseq": genseq_version(), "torch": torch.__version__, "python": platform.python_version()}
    assert all(f"{name} {value}" in info.stdout for name, value in versions.items())


def genseq_version() -> str:
    from genseq import __version__

    return __version__


# -- clear errors (those not already covered in tests/cli/) -------------------


def limited_file_size(limit_bytes: int):
    """preexec_fn: writes past `limit_bytes` fail with EFBIG, as on a full disk (SIGXFSZ ignored)."""
    def apply() -> None:
        one_cpu()
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return apply


def test_disk_full_while_saving_a_checkpoint_is_one_line_and_leaves_no_partial_file(tmp_path, small_text):
    run = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "genseq", "train", str(small_text), "--name", str(run), "--steps", "10",
         "--eval-every", "5", "--hidden", "64", "--batch-size", "8", "--seq-len", "32", "--quiet"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
        preexec_fn=limited_file_size(300_000))  # the token cache (~70 KB) fits, a checkpoint (~850 KB) does not
    assert_one_line_error(result, f"could not write checkpoint {run / 'last.pt'}", "File too large",
                          "free some disk space")
    assert not (run / "last.pt").exists() and not list(run.glob(".*.tmp"))


def test_disk_full_while_building_the_token_cache_is_one_line(tmp_path, small_text):
    result = subprocess.run(
        [sys.executable, "-m", "genseq", "train", str(small_text), "--name", str(tmp_path / "run"), *SMALL],
        capture_output=True, text=True, timeout=300, env={**os.environ, "GENSEQ_CACHE": str(tmp_path / "cache")},
        preexec_fn=limited_file_size(5_000))
    assert_one_line_error(result, "File too large")


def test_resume_without_a_checkpoint_names_the_fix(tmp_path):
    (tmp_path / "run").mkdir()
    assert_one_line_error(genseq("train", "--resume", str(tmp_path / "run")), "holds no last.pt",
                          "start it again without --resume")
    assert_one_line_error(genseq("train", "--resume", str(tmp_path / "gone")), "no such run folder")


def test_training_into_a_folder_that_holds_a_run_points_to_resume(small_run, small_text):
    result = genseq("train", str(small_text), "--name", str(small_run), *SMALL)
    assert_one_line_error(result, "already holds a run", f"--resume {small_run}")


@pytest.mark.parametrize("option, value, fragment", [
    ("--top-k", "0", "--top-k must be positive"),
    ("--length", "0", "--length must be positive"),
    ("--num-samples", "0", "--num-samples must be positive"),
])
def test_bad_sampling_parameters(small_run, option, value, fragment):
    assert_one_line_error(genseq("sample", str(small_run), option, value), fragment)


@pytest.mark.parametrize("options, fragment", [
    (["--size", "huge"], "unknown --size 'huge'"),
    (["--tokenizer", "words"], "unknown tokenizer 'words'"),
    (["--lr", "0"], "--lr must be a positive number"),
    (["--batch-size", "4096"], "too few for 4096 streams"),
])
def test_bad_training_options(tmp_path, small_text, options, fragment):
    result = genseq("train", str(small_text), "--name", str(tmp_path / "run"), "--steps", "1", *options)
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "run" / "last.pt").exists()


def test_a_truncated_checkpoint_is_one_line(small_run, tmp_path):
    data = (small_run / "last.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    assert_one_line_error(genseq("sample", str(tmp_path / "cut.pt")), "cut.pt is not a readable genseq checkpoint")


def test_primer_and_primer_file_together(small_run, tmp_path):
    (tmp_path / "primer.txt").write_text("the ")
    result = genseq("sample", str(small_run), "--primer", "the ", "--primer-file", str(tmp_path / "primer.txt"))
    assert_one_line_error(result, "--primer", "not both")


def test_a_folder_of_empty_files(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("")
    result = genseq("train", str(tmp_path / "data"), "--name", str(tmp_path / "run"))
    assert_one_line_error(result, "every file is empty")
