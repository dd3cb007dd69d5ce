import json
import math
import os
import platform
import signal
import subprocess
import sys

import numpy as np
import pytest

from genseq import api
from genseq.lm.checkpoint import load_checkpoint
from genseq.lm.config import ModelConfig, TrainConfig
from genseq.lm.data import StreamBatches
from genseq.lm.training import Trainer, read_metrics


def test_training_lowers_validation_loss_well_below_the_uniform_baseline(trained_run):
    model = api.load(trained_run)
    uniform = math.log(model.tokenizer.vocab_size)
    best = model.payload["progress"]["best_val_loss"]
    assert best < 0.5 * uniform, (best, uniform)


def test_run_folder_holds_checkpoints_config_and_metrics(trained_run):
    assert {"best.pt", "last.pt", "config.json", "metrics.jsonl"} <= {p.name for p in trained_run.iterdir()}
    config = json.loads((trained_run / "config.json").read_text())
    assert config["model"]["hidden_size"] == 64 and config["train"]["steps"] == 150
    steps = [r["step"] for r in read_metrics(trained_run)]
    assert steps == [50, 100, 150]


def test_batches_carry_each_stream_on_from_where_the_last_window_ended():
    tokens = np.arange(10_000, dtype=np.int32)
    batches = StreamBatches(tokens, batch_size=4, seq_len=10, seed=0)
    x0, y0 = batches.window(0, 0)
    x1, _ = batches.window(0, 1)
    assert (x1[:, 0] == x0[:, -1] + 1).all()
    assert (y0 == x0 + 1).all()
    assert (x0[1, 0] - x0[0, 0]).item() == batches.stream_len


def _trainer(tokens, run_dir, resume_from=None, config=None):
    config = config or TrainConfig(steps=40, eval_every=10, batch_size=8, seq_len=16, seed=7, eval_tokens=2000)
    meta = {"tokenizer": {"kind": "char", "chars": "abcdefgh"}, "data": {}}
    return Trainer(ModelConfig(vocab_size=11, hidden_size=32), config, tokens[:20_000], tokens[20_000:],
                   run_dir, meta, resume_from)


def test_a_time_budget_evaluates_less_often_where_an_evaluation_takes_long(tmp_path):
    """Ten evaluations of 6 s would take a third of a 3-minute run; they keep to about EVAL_SHARE of it."""
    tokens = (np.arange(24_000) * 7 % 11).astype(np.int32) % 8 + 3

    def evaluated_at(first_evaluation_seconds: float) -> list[int]:
        trainer = _trainer(tokens, tmp_path, config=TrainConfig(minutes=3, batch_size=8, seq_len=16, eval_tokens=2000))
        due = []
        for percent in range(1, 101):
            trainer.progress.elapsed_seconds = 180 * percent / 100
            if trainer._evaluation_due():
                due.append(percent)
                trainer.eval_seconds = first_evaluation_seconds
        return due

    assert evaluated_at(0.5) == list(range(10, 101, 10))
    assert evaluated_at(6.0) == [10, 67, 100]  # 18 s of 180: three evaluations
    assert evaluated_at(60.0) == [10, 100]  # at least the first and the last


def test_patience_stops_a_run_whose_validation_loss_no_longer_improves(tmp_path):
    """A rate too small to change a float32 weight leaves the validation loss exactly as it was: after the first
    evaluation (the best) two more without improvement end the run, early, with best.pt kept."""
    tokens = (np.arange(24_000) * 7 % 11).astype(np.int32) % 8 + 3
    config = TrainConfig(steps=100, eval_every=2, batch_size=8, seq_len=16, seed=7, eval_tokens=2000,
                         learning_rate=1e-30, patience=2)
    result = _trainer(tokens, tmp_path, config=config).run()
    assert result.stopped_by == "no improvement" and result.progress.step == 6
    assert [r["step"] for r in result.metrics] == [2, 4, 6] and (tmp_path / "best.pt").is_file()


def test_resuming_a_stopped_run_gives_the_same_losses_as_an_uninterrupted_run(tmp_path):
    tokens = (np.arange(24_000) * 7 % 11).astype(np.int32) % 8 + 3
    straight: list[float] = []
    _trainer(tokens, tmp_path / "straight").run(on_step=lambda t, loss: straight.append(loss))

    first: list[float] = []

    def interrupt_at_17(t, loss):
        first.append(loss)
        if t.progress.step == 17:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does: the step finishes, a checkpoint is saved

    result = _trainer(tokens, tmp_path / "stopped").run(on_step=interrupt_at_17)
    assert result.stopped_by == "SIGINT" and result.progress.step == 17
    resumed: list[float] = []
    payload = load_checkpoint(tmp_path / "stopped" / "last.pt")
    _trainer(tokens, tmp_path / "stopped", payload).run(on_step=lambda t, loss: resumed.append(loss))
    assert first + resumed == pytest.approx(straight, abs=0, rel=0)
    steps = [r["step"] for r in read_metrics(tmp_path / "stopped")]
    assert steps == [10, 17, 20, 30, 40]


def test_resume_through_the_api_continues_the_run(trained_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained_run, copy)
    payload = load_checkpoint(copy / "last.pt")
    assert payload["progress"]["step"] == 150
    result = api.train(resume=copy, progress=False)  # budget already spent: nothing more to do
    assert result.progress.step == 150


HEAP_KEPT_PROBE = """
import resource, threading, torch
import genseq.api  # what `genseq train` has loaded: the main heap's room to grow depends on the libraries mapped
from genseq.lm.runtime import heap_kept

def faults_of_a_second_100mb_tensor():
    torch.ones(25_000_000)  # allocated and freed at once
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(25_000_000)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

outside = faults_of_a_second_100mb_tensor()
with heap_kept():
    # the heap grows to fit; an aligned block may not fit the first freed one, so the heap may take another
    # round or two to settle (as a training run's first steps do): the fewest faults of three rounds
    within = min(faults_of_a_second_100mb_tensor() for _ in range(3))
    sums = []  # another thread's arena, which cannot grow that far, still gets its 200 MB
    thread = threading.Thread(target=lambda: sums.append(torch.ones(25_000_000, dtype=torch.float64).sum().item()))
    thread.start()
    thread.join()
print(outside, within, faults_of_a_second_100mb_tensor(), sums[0])
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_heap_kept_reuses_freed_memory_within_and_returns_to_the_defaults_after():
    # a fresh process, as `genseq train` is: in a long one (this test run) the main thread may have been
    # moved to another malloc arena, whose heaps cannot hold such a block and fall back to mmap
    result = subprocess.run([sys.executable, "-c", HEAP_KEPT_PROBE], capture_output=True, text=True, check=True)
    outside, within, after, total = result.stdout.split()
    assert int(outside) > 10_000 and int(after) > 10_000  # glibc's default: a fresh mmap, every page faults in
    assert int(within) < 1_000
    assert float(total) == 25_000_000.0
