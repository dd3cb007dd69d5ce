"""Bounds, checkpoints that prove their weights, foreign files and a full disk: the CLI and the library (issue #26).

CLI errors are checked in-process through `genseq.cli.main` (one line on stderr, status 2), which is what a
`python -m genseq` subprocess runs, without its seconds of start-up.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
import torch

import genseq
from genseq import api
from genseq.errors import CheckpointError, GenseqError
from genseq.files import atomic_file
from genseq.lm.checkpoint import DIGEST, FORMAT, VERSION, load_checkpoint, shipped_models
from genseq.lm.training import _truncate_metrics, read_metrics
from genseq.music import controls
from tests.helpers import FOLK, LOCAL, assert_one_line_error, generated_text, run_cli, stream


@pytest.fixture
def text_source(tmp_path) -> Path:
    path = tmp_path / "small.txt"
    path.write_text(generated_text(6_000, seed=2), encoding="utf-8")
    return path


# -- bounds ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "fragments"), [
    (["--transpose", "24000000"], ["--transpose must lie in -48..48 semitones, got 24000000"]),
    (["--seed", str(10**30)], ["--seed must lie in 0..2**64-1"]),
    (["--num-samples", "100000", "--length", "100000"], ["100,000 samples of 100,000 tokens needs about 240.0 GB",
                                                         "ask for fewer or shorter samples"]),
])
def test_sampling_beyond_its_bounds_is_one_line(args, fragments):
    assert_one_line_error(run_cli("sample", FOLK, *args), *fragments)


def test_transpose_is_bounded_in_the_library_too():
    tune = "X:1\nK:G\nGAB|\n"
    assert controls.transpose_abc(tune, 48).startswith("X:1\nK:G\n")
    for semitones in (49, -49, 24_000_000):
        with pytest.raises(GenseqError, match="--transpose must lie in -48..48"):
            controls.transpose_abc(tune, semitones)


def test_training_options_that_cannot_be_held_or_read_are_one_line(text_source, tmp_path):
    run = str(tmp_path / "run")
    assert_one_line_error(run_cli("train", str(text_source), "--name", run, "--encoding", "bogus-enc"),
                    "unknown --encoding 'bogus-enc'; give a Python codec name")
    assert_one_line_error(run_cli("train", str(text_source), "--name", run, "--hidden", "200000",
                        "--layers", "2", "--steps", "1", "--quiet"),
                    "a 2x200000 model needs about", "TB of memory", "choose a smaller --hidden or --layers")
    assert_one_line_error(run_cli("train", str(text_source), "--name", run, "--seed", "-1"),
                    "--seed must lie in 0..2**64-1, got -1")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run_cli("train", str(tmp_path / "empty"), "--name", run),
                    "is an empty folder")
    assert not (tmp_path / "run" / "last.pt").exists()


def test_metrics_with_bytes_genseq_did_not_write_are_dropped_on_resume(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_bytes(b'{"step": 5, "val_loss": 1.5}\n\xff\xfe\x00 not utf-8\n{"step": 9, "val_loss": 1.2}\n')
    assert [r["step"] for r in read_metrics(tmp_path)] == [5, 9]
    _truncate_metrics(metrics, 5)
    assert metrics.read_bytes() == b'{"step": 5, "val_loss": 1.5}\n'


# -- checkpoints that prove their weights -----------------------------------------------------------------------


def flip_a_weight_byte(path: Path) -> None:
    """Flip one byte in the middle of the checkpoint's largest tensor, as a bad sector or a bad copy would."""
    with zipfile.ZipFile(path) as archive:
        largest = max(archive.infolist(), key=lambda info: info.file_size)
    data = bytearray(path.read_bytes())
    header = largest.header_offset
    start = header + 30 + int.from_bytes(data[header + 26:header + 28], "little") + \
        int.from_bytes(data[header + 28:header + 30], "little")
    data[start + largest.file_size // 2] ^= 0x10
    path.write_bytes(bytes(data))


@pytest.fixture
def digested_run(tmp_path) -> Path:
    """A run folder holding the shipped folk model as best.pt and last.pt, written with their digest."""
    run = tmp_path / "run"
    api.export_checkpoint(FOLK, run / "best.pt")
    shutil.copy(run / "best.pt", run / "last.pt")
    return run


def test_a_flipped_weight_byte_is_refused_and_the_intact_twin_named(digested_run):
    assert DIGEST in load_checkpoint(digested_run / "best.pt")
    flip_a_weight_byte(digested_run / "best.pt")
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(digested_run / "best.pt")
    assert "best.pt is damaged: its tensors do not match the SHA-256 digest" in str(refused.value)
    assert "last.pt beside it is intact" in str(refused.value)
    assert_one_line_error(run_cli("sample", str(digested_run), "--length", "5"),
                    f"{digested_run / 'best.pt'} is damaged", "last.pt beside it is intact")
    flip_a_weight_byte(digested_run / "last.pt")
    assert_one_line_error(run_cli("sample", str(digested_run / "last.pt"), "--length", "5"),
                    "last.pt is damaged", "best.pt beside it is damaged too")


def test_checkpoints_written_before_the_digest_still_load(tmp_path):
    shipped = load_checkpoint(shipped_models()[FOLK])
    shipped.pop(DIGEST, None)  # as a file written before the digest
    torch.save(shipped, tmp_path / "old.pt")
    assert genseq.load(tmp_path / "old.pt").sample(length=20, seed=1) == genseq.load(FOLK).sample(length=20, seed=1)


@pytest.mark.parametrize(("change", "fragment"), [
    (lambda p: p.pop("model"), "it lacks its 'model'"),
    (lambda p: p.update(model="weights"), "it has a str for its 'model'"),
    (lambda p: p["model_config"].update(hidden_size="384"), "do not fit together (TypeError"),
    (lambda p: p.update(tokenizer={"kind": "abc"}), "do not fit together (KeyError"),
    (lambda p: p["model_config"].update(hidden_size=200_000), "its model cannot be built here: a 2x200000 model "
                                                              "needs about"),
])
def test_a_checkpoint_with_missing_or_mistyped_fields_is_one_line(tmp_path, change, fragment):
    payload = load_checkpoint(shipped_models()[FOLK])
    change(payload)
    torch.save({**payload, "format": FORMAT, "version": VERSION}, tmp_path / "odd.pt")
    assert_one_line_error(run_cli("sample", str(tmp_path / "odd.pt"), "--length", "5"), "odd.pt", fragment)


# -- foreign run folders ----------------------------------------------------------------------------------------


def test_runs_skips_and_counts_folders_genseq_did_not_write(tmp_path, digested_run):
    (digested_run / "config.json").write_text(json.dumps({"model": {"num_layers": 2, "hidden_size": 384},
                                                          "data": {"corpus": "folk-abc"}}))
    (tmp_path / "downloaded").mkdir()
    (tmp_path / "downloaded" / "config.json").write_text('{"model": "gpt2"}')
    os.symlink(digested_run, tmp_path / "linked")
    result = run_cli("runs", str(tmp_path))
    status, out, err = result.returncode, result.stdout, result.stderr
    assert status == 0 and "Traceback" not in err
    assert str(digested_run) in out and "downloaded" not in out and "linked" not in out
    assert "config.json was not written by genseq" in err and "a symbolic link (not followed)" in err
    assert "skipped 2 folder(s) that genseq did not write" in err


# -- a full disk ------------------------------------------------------------------------------------------------


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KiB tmpfs: a few small files fit, a checkpoint or a WAV does not (root only; skipped elsewhere)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True,
                             text=True) if shutil.which("mount") else None
    if mounted is None or mounted.returncode != 0:
        reason = mounted.stderr.strip() if mounted is not None else "no mount command"
        pytest.skip(f"a size-limited tmpfs cannot be mounted here ({reason}); run the tests as root to simulate "
                    "a full disk")
    try:
        yield disk
    finally:
        with contextlib.suppress(OSError):
            subprocess.run(["umount", "-l", str(disk)], check=False)


def debris(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def test_torch_failing_on_a_full_disk_is_one_line_and_leaves_nothing(full_disk):
    with pytest.raises(GenseqError, match="could not write checkpoint .*big.pt: No space left on device"):
        with atomic_file(full_disk / "big.pt", "checkpoint ") as handle:
            torch.save({"weights": torch.zeros(100_000)}, handle)
    assert list(full_disk.iterdir()) == []


def test_training_into_a_full_disk_is_one_line_and_leaves_no_debris(full_disk, text_source):
    run = full_disk / "run"
    line = assert_one_line_error(run_cli("train", str(text_source), "--name", str(run), "--steps", "2",
                               "--hidden", "256", "--layers", "1", "--batch-size", "4", "--seq-len", "16",
                               "--quiet"), "could not write", "free some disk space")
    assert "No space left on device" in line
    assert debris(full_disk) == [] and not (run / "last.pt").exists()


def test_sampling_wav_into_a_full_disk_is_one_line_and_leaves_no_truncated_wav(full_disk):
    out = full_disk / "out"
    assert_one_line_error(run_cli("sample", FOLK, "--length", "300", "--seed", "1", "--output-dir",
                        str(out), "--wav", "--quiet"), "could not write", "No space left on device")
    assert debris(full_disk) == [] and not list(out.glob("*.wav"))


def test_the_studio_on_a_full_disk_says_so_keeps_serving_and_keeps_no_half_result(full_disk):
    from starlette.testclient import TestClient

    from genseq.serve import create_app

    with TestClient(create_app(full_disk), base_url=LOCAL) as client:
        events = stream(client, {"model": FOLK, "length": 300, "seed": 1})
        name, data = events[-1]
        assert name == "error" and "could not write" in data["error"] and "\n" not in data["error"]
        assert client.get("/api/history").json()["results"] == []
        assert client.get("/api/models").json()["busy"] is False
    results = full_disk / "studio" / "results"
    assert not results.exists() or list(results.iterdir()) == []
    assert debris(full_disk) == []
