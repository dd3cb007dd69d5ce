"""The CLI as a user meets it: its entry point with real arguments and real files (`run_cli`)."""

import json

import pytest
import torch
from conftest import assert_one_line_error, run_cli


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
