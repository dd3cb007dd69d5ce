"""Samples while a model learns: `--sample-every N` writes samples and their losses at every N-th step."""

import json

from genseq import api
from genseq.api.progress_samples import LENGTH, SAMPLES, SEED
from tests.helpers import assert_one_line_error, run_cli

TUNES = "\n".join(f"X:{i}\nM:3/4\nL:1/8\nK:G\n|:GAB cde|{'dcB' if i % 2 else 'BAG'} AGF|G6:|\n" for i in range(1, 31))


def test_a_text_run_writes_samples_with_their_losses_and_a_report(tmp_path, text_file):
    run = tmp_path / "run"
    result = run_cli("train", str(text_file), "--name", str(run), "--steps", "20", "--sample-every", "10",
                     "--report", "--hidden", "32", "--batch-size", "8", "--seq-len", "32", "--quiet")
    assert result.returncode == 0, result.stderr
    index = [json.loads(line) for line in (run / "samples" / "index.jsonl").read_text().splitlines()]
    metrics = {r["step"]: r["val_loss"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())}
    assert [entry["step"] for entry in index] == [10, 20]
    assert all(entry["val_loss"] == metrics[entry["step"]] for entry in index)
    texts = [(run / "samples" / entry["files"][0]).read_text() for entry in index]
    assert [entry["files"] for entry in index] == [["step-000010.txt"], ["step-000020.txt"]]
    assert all(text.count("\n----\n") == SAMPLES - 1 for text in texts)
    page = (run / "samples" / "index.html").read_text()
    assert "step 10" in page and "step 20" in page and f"{index[1]['val_loss']:.4f}" in page
    # the last step's samples are the seeded samples of the checkpoint it wrote: steps differ by the model only
    again = api.load(run / "last.pt").sample(num_samples=SAMPLES, length=LENGTH, seed=SEED)
    assert texts[1] == "\n\n----\n\n".join(s.rstrip("\n") + "\n" for s in again)


def test_an_abc_run_writes_tunes_at_the_set_steps(tmp_path):
    tunes = tmp_path / "tunes.abc"
    tunes.write_text(TUNES)
    result = api.train(str(tunes), name=str(tmp_path / "run"), progress=False, sample_every=10, steps=20,
                       model={"hidden_size": 32}, batch_size=4, seq_len=32)
    samples = result.run_dir / "samples"
    index = [json.loads(line) for line in (samples / "index.jsonl").read_text().splitlines()]
    assert [(e["step"], e["files"]) for e in index] == [(10, ["step-000010.abc"]), (20, ["step-000020.abc"])]
    assert all(isinstance(e["val_loss"], float) for e in index)
    tunes = (samples / "step-000020.abc").read_text()
    assert tunes.startswith("X:") and "\nK:" in tunes  # 20 steps make poor tunes, but they begin as tunes
    assert not (samples / "index.html").exists()  # the page is written when asked for


def test_sample_steps_that_are_no_evaluation_steps_are_refused(tmp_path, text_file):
    assert_one_line_error(run_cli("train", str(text_file), "--name", str(tmp_path / "run"), "--steps", "20",
                                  "--eval-every", "4", "--sample-every", "10", "--quiet"),
                          "--sample-every 10 must be a multiple", "--eval-every 10")
    assert_one_line_error(run_cli("train", str(text_file), "--steps", "20", "--report", "--quiet"),
                          "--report on train", "--sample-every")


def test_eval_samples_at_every_evaluation_of_a_planned_schedule(tmp_path, text_file):
    """A time budget plans its evaluations, so no step count fits it before it starts: `eval` samples at each."""
    result = api.train(str(text_file), name=str(tmp_path / "run"), progress=False, sample_every="eval", steps=12,
                       model={"hidden_size": 32}, batch_size=8, seq_len=32)
    index = [json.loads(line) for line in (result.run_dir / "samples" / "index.jsonl").read_text().splitlines()]
    assert [e["step"] for e in index] == [r["step"] for r in result.metrics] and len(index) >= 2
    assert_one_line_error(run_cli("train", str(text_file), "--steps", "5", "--sample-every", "often", "--quiet"),
                          "--sample-every must be a positive number of steps or eval, got often")
