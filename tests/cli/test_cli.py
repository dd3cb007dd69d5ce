"""The CLI as a user meets it: its entry point with real arguments and real files (`run_cli`), and behaving like the
tools users already know: config files, presets, a live progress bar on a terminal."""

import json
import os
import pty
import select
import subprocess
import sys
import time

import pytest
import torch

from tests.helpers import assert_one_line_error, run_cli

SMALL = ["--steps", "12", "--eval-every", "6", "--batch-size", "8", "--seq-len", "32", "--quiet"]


def test_train_then_sample_eval_and_info(tmp_path, text_file):
    run = tmp_path / "run"
    train = run_cli("train", str(text_file), "--name", str(run), "--steps", "30", "--eval-every", "15",
                    "--hidden", "32", "--batch-size", "8", "--seq-len", "32", "--quiet", "--json")
    assert train.returncode == 0, train.stderr
    assert json.loads(train.stdout)["steps"] == 30
    out = tmp_path / "out.txt"
    sample = run_cli("sample", str(run), "--primer", "the ", "--length", "40", "--seed", "1",
                     "--num-samples", "2", "--top-k", "20", "--top-p", "0.95", "--output", str(out))
    assert sample.returncode == 0, sample.stderr
    assert out.read_text().count("the ") >= 2
    evaluated = run_cli("eval", str(run / "best.pt"), str(text_file))
    assert evaluated.returncode == 0 and evaluated.stdout.startswith("loss ") and "nats/char" in evaluated.stdout
    info = run_cli("info", str(run / "best.pt"))
    assert "2x32 LSTM" in info.stdout and "seed 1337" in info.stdout and "torch" in info.stdout


def test_same_seed_gives_identical_samples_from_the_cli(trained_run):
    first, second = (run_cli("sample", str(trained_run), "--length", "60", "--seed", "9", "--json") for _ in "ab")
    assert first.stdout == second.stdout and len(json.loads(first.stdout)[0]) > 0


def test_missing_input_file(tmp_path):
    assert_one_line_error(run_cli("train", str(tmp_path / "nope.txt"), cwd=tmp_path), "nope.txt", "no such file")
    assert not (tmp_path / "checkpoints").exists()


def test_empty_input_file(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    assert_one_line_error(run_cli("train", str(tmp_path / "empty.txt"), cwd=tmp_path), "empty.txt is empty")
    assert not (tmp_path / "checkpoints").exists()


def test_non_utf8_file_names_the_byte_offset_and_the_encoding_option(tmp_path):
    (tmp_path / "latin.txt").write_bytes("naïve".encode("latin-1") * 10)
    result = run_cli("train", str(tmp_path / "latin.txt"), cwd=tmp_path)
    assert_one_line_error(result, "latin.txt is not valid utf-8", "byte 2", "--encoding")
    assert not (tmp_path / "checkpoints").exists()


def test_primer_with_unseen_characters_names_them(trained_run, tmp_path):
    result = run_cli("sample", str(trained_run), "--primer", "the €~", "--output", str(tmp_path / "o.txt"))
    assert_one_line_error(result, "'€'", "'~'")
    assert not (tmp_path / "o.txt").exists()


@pytest.mark.parametrize("value, fragment", [("-0.5", "--temperature must be a number >= 0"),
                                             ("hot", "Invalid value for '--temperature'")])
def test_bad_temperature(trained_run, value, fragment):
    assert_one_line_error(run_cli("sample", str(trained_run), "--temperature", value), fragment)


@pytest.mark.parametrize("value", ["0", "1.5", "-1"])
def test_top_p_outside_zero_one(trained_run, value):
    assert_one_line_error(run_cli("sample", str(trained_run), "--top-p", value), "--top-p must lie in (0, 1]")


def test_unknown_sampling_precision(trained_run):
    assert_one_line_error(run_cli("sample", str(trained_run), "--precision", "fp8"),
                          "--precision must be auto, fp32, bf16 or int8, got 'fp8'")


def test_a_path_that_is_not_a_checkpoint(tmp_path, text_file):
    assert_one_line_error(run_cli("sample", str(text_file)), "is not a readable genseq checkpoint")
    assert_one_line_error(run_cli("info", str(tmp_path)), "without best.pt or last.pt")


def test_a_checkpoint_of_an_unknown_format_version(trained_run, tmp_path):
    payload = torch.load(trained_run / "best.pt", weights_only=True)
    payload["version"] = 99
    torch.save(payload, tmp_path / "future.pt")
    assert_one_line_error(run_cli("info", str(tmp_path / "future.pt")), "format version 99", "reads version 1")


def test_output_file_is_never_overwritten_without_force(trained_run, tmp_path):
    out = tmp_path / "keep.txt"
    out.write_text("precious")
    assert_one_line_error(run_cli("sample", str(trained_run), "--output", str(out)), "already exists", "--force")
    assert out.read_text() == "precious"
    assert run_cli("sample", str(trained_run), "--output", str(out), "--force", "--length", "5").returncode == 0
    assert out.read_text() != "precious"


def test_resume_refuses_settings_other_than_a_budget(trained_run):
    """A resumed run keeps its data and settings; silently ignoring a new --lr would mislead."""
    before = (trained_run / "last.pt").read_bytes()
    result = run_cli("train", "--resume", str(trained_run), "--lr", "0.1", "--dropout", "0.5", "--quiet")
    assert_one_line_error(result, "--resume", "dropout", "learning_rate")
    assert (trained_run / "last.pt").read_bytes() == before



def test_a_toml_config_fills_options_and_flags_win(tmp_path, text_file):
    config = tmp_path / "run.toml"
    config.write_text('hidden = 48\nlayers = 1\ndropout = 0.1\nseq_len = 32\nbatch_size = 8\nsteps = 12\n'
                      'eval_every = 6\n')
    run = tmp_path / "run"
    result = run_cli("train", str(text_file), "--config", str(config), "--hidden", "40", "--name", str(run), "-q",
                     "--token-dropout")
    assert result.returncode == 0, result.stderr
    saved = json.loads((run / "config.json").read_text())
    assert saved["model"]["hidden_size"] == 40 and saved["model"]["num_layers"] == 1
    assert saved["model"]["locked_dropout"] is False  # planned True; the flag wins
    assert saved["model"]["dropout"] == 0.1 and saved["train"]["steps"] == 12


def test_a_toml_config_with_an_unknown_key_is_refused(tmp_path, text_file):
    config = tmp_path / "run.toml"
    config.write_text("hiden = 48\n")
    assert_one_line_error(run_cli("train", str(text_file), "--config", str(config)), "unknown keys: hiden")


def test_size_presets_set_layers_and_hidden(tmp_path, text_file):
    run = tmp_path / "tiny"
    assert run_cli("train", str(text_file), "--size", "tiny", "--name", str(run), *SMALL).returncode == 0
    model = json.loads((run / "config.json").read_text())["model"]
    assert (model["num_layers"], model["hidden_size"]) == (1, 128)
    assert_one_line_error(run_cli("train", str(text_file), "--size", "huge"), "unknown --size 'huge'")


def test_runs_lists_runs_with_their_best_loss(tmp_path, text_file):
    run_cli("train", str(text_file), "--hidden", "16", "--name", str(tmp_path / "runs" / "a"), *SMALL)
    rows = json.loads(run_cli("runs", str(tmp_path / "runs"), "--json").stdout)
    assert [r["run"] for r in rows] == [str(tmp_path / "runs" / "a")] and rows[0]["best_val_loss"] > 0


def read_pty(command: list[str], seconds: float = 120) -> str:
    """Run `command` on a pseudo-terminal, as in a user's shell, and return everything it wrote."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(command, stdin=follower, stdout=follower, stderr=follower, close_fds=True,
                               env={**os.environ, "COLUMNS": "120", "TERM": "xterm-256color"})
    os.close(follower)
    chunks, deadline = [], time.time() + seconds
    while time.time() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    process.wait(timeout=30)
    os.close(leader)
    return b"".join(chunks).decode("utf-8", "replace")


def test_training_on_a_terminal_shows_a_live_progress_bar(tmp_path, text_file):
    screen = read_pty([sys.executable, "-m", "genseq", "train", str(text_file), "--hidden", "32", "--steps", "60",
                       "--eval-every", "30", "--batch-size", "8", "--seq-len", "32", "--name", str(tmp_path / "r")])
    assert "step 60" in screen and "tok/s" in screen and "left" in screen, screen[-2000:]
    assert screen.count("\r") + screen.count("\x1b[") > 5  # redrawn in place, not printed line after line
    assert "best validation loss" in screen


def test_sampling_on_a_terminal_streams_the_text(trained_run):
    screen = read_pty([sys.executable, "-m", "genseq", "sample", str(trained_run), "--primer", "the ",
                       "--length", "60", "--seed", "4"])
    assert screen.startswith("the ") and len(screen.strip()) > 20


def test_sampling_to_files_shows_a_progress_bar_that_quiet_hides(tmp_path):
    command = [sys.executable, "-m", "genseq", "sample", "folk-abc-small", "--length", "400", "--seed", "1",
               "--no-stop-at-end"]
    loud = read_pty([*command, "--output-dir", str(tmp_path / "loud")])
    quiet = read_pty([*command, "--output-dir", str(tmp_path / "quiet"), "--quiet"])
    assert "sampling" in loud and "400/400" in loud, loud[-2000:]
    assert "/400" not in quiet and "sample-01.abc" in quiet, quiet[-2000:]


def test_tensorboard_logs_or_says_what_to_install(tmp_path, text_file):
    import importlib.util

    run = tmp_path / "tb"
    result = run_cli("train", str(text_file), "--tensorboard", "--hidden", "16", "--name", str(run), *SMALL)
    if importlib.util.find_spec("tensorboard") is None:
        assert_one_line_error(result, "pip install 'genseq[tensorboard]'")
        assert not run.exists()
    else:
        assert result.returncode == 0, result.stderr
        assert list((run / "tensorboard").glob("events.out.tfevents.*"))


def test_optimizer_flags_reach_the_optimizer(tmp_path, text_file):
    run = tmp_path / "run"
    flags = ["--lr", "0.004", "--warmup-steps", "3", "--weight-decay", "0.2", "--clip", "1.5"]
    assert run_cli("train", str(text_file), "--hidden", "16", "--name", str(run), *flags, *SMALL).returncode == 0
    saved = json.loads((run / "config.json").read_text())["train"]
    assert (saved["learning_rate"], saved["warmup_steps"], saved["weight_decay"], saved["grad_clip"]) == (
        0.004, 3, 0.2, 1.5)
    group = torch.load(run / "last.pt", weights_only=True)["optimizer"]["param_groups"][0]
    assert group["weight_decay"] == 0.2 and 0 < group["lr"] < 0.004  # on the cosine after a 3-step warm-up
    assert_one_line_error(run_cli("train", str(text_file), "--clip", "0"), "--clip must be positive, got 0.0")


def test_the_shakespeare_corpus_trains_and_is_listed_with_its_counts(tmp_path):
    assert "shakespeare" in run_cli("corpus", "list").stdout
    train = run_cli("train", "--corpus", "shakespeare", "--name", str(tmp_path / "run"), "--steps", "4",
                    "--eval-every", "2", "--hidden", "16", "--batch-size", "4", "--seq-len", "16", "--quiet",
                    "--json")
    assert train.returncode == 0, train.stderr
    listed = json.loads(run_cli("corpus", "list", "--json").stdout)
    row = next(row for row in listed if row["name"] == "shakespeare")
    assert row["tokenizer"] == "char" and row["documents"] == 1
    assert row["tokens"] == 1_115_394 + 2  # an <eod> ends each split


def test_the_shipped_text_model_continues_a_primer_on_a_fresh_install():
    """shakespeare-small ships inside the package: `genseq sample shakespeare-small --primer "ROMEO:"` needs no run."""
    result = run_cli("sample", "shakespeare-small", "--primer", "ROMEO:", "--length", "200", "--seed", "1")
    assert result.returncode == 0, result.stderr
    text = result.stdout.strip()
    assert text.startswith("ROMEO:") and len(text) > 150
    words = text.split()
    assert sum(word.strip(".,;:!?'").isalpha() for word in words) / len(words) > 0.8  # words, not noise
    assert run_cli("sample", "shakespeare-small", "--primer", "ROMEO:", "--length", "200", "--seed", "1").stdout == \
        result.stdout
