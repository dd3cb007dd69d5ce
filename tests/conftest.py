import contextlib
import io
import os
import random
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(params=["this-cpu", "no-bf16"])
def cpu_view(request, monkeypatch) -> str:
    """Runs a test as this CPU is, then as a CPU without native bf16 (an AVX2-only one) would see it, with
    genseq's own switch GENSEQ_NO_BF16=1: a bf16 machine catches what an AVX2 machine would hit."""
    from genseq.lm.runtime import NO_BF16_VARIABLE, cpu_supports_bf16

    if request.param == "no-bf16":
        if not cpu_supports_bf16():
            pytest.skip("this CPU has no native bf16: the run as this CPU is already the run without it")
        monkeypatch.setenv(NO_BF16_VARIABLE, "1")
    else:
        monkeypatch.delenv(NO_BF16_VARIABLE, raising=False)
    return request.param


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test writes its caches and default run folders under a temporary directory."""
    monkeypatch.setenv("GENSEQ_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def generated_text(n_chars: int, seed: int = 0) -> str:
    """Text with learnable structure: sentences drawn from a tiny grammar."""
    rng = random.Random(seed)
    subjects = ["the cat", "a dog", "my friend", "the old king", "her brother"]
    verbs = ["sees", "likes", "follows", "finds", "calls"]
    objects = ["the moon.", "a red ball.", "the sea.", "his hat.", "the river."]
    lines = []
    while sum(len(line) for line in lines) < n_chars:
        lines.append(f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}\n")
    return "".join(lines)


@pytest.fixture(scope="session")
def text_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "grammar.txt"
    path.write_text(generated_text(60_000), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, text_file) -> Path:
    """A small model trained briefly on the generated text (shared by sampling and CLI tests)."""
    from genseq import api

    os.environ["GENSEQ_CACHE"] = str(tmp_path_factory.getbasetemp() / "cache")
    run_dir = tmp_path_factory.mktemp("runs") / "grammar"
    api.train(str(text_file), name=str(run_dir), progress=False, model={"hidden_size": 64, "num_layers": 2},
              steps=150, eval_every=50, batch_size=16, seq_len=32, learning_rate=1e-2)
    return run_dir


def run_cli(*args: str, cwd: Path | None = None, process: bool = False) -> subprocess.CompletedProcess:
    """Run `genseq ARGS` as a user would, capturing its exit status and output.

    In this process through `genseq.cli.main`, the entry point `python -m genseq` runs, with argv, the working
    folder and stdout/stderr swapped in (a new Python spends 2-3 s importing torch and music21 before the
    command starts). `process=True` runs a real `python -m genseq` where the process itself is what is
    tested: its interpreter teardown, signals, a terminal.
    """
    if process:
        return subprocess.run([sys.executable, "-m", "genseq", *args], capture_output=True, text=True, cwd=cwd,
                              env={**os.environ}, timeout=300)
    from genseq import cli

    out, err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8"), io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    argv, folder = sys.argv, os.getcwd()
    sys.argv = ["genseq", *args]
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli.main()
                code = 0
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 1
            except Exception:  # noqa: BLE001 - what a process would print as its traceback, exit status 1
                traceback.print_exc()
                code = 1
    finally:
        sys.argv = argv
        os.chdir(folder)
    texts = []
    for stream in (out, err):
        stream.flush()
        texts.append(stream.buffer.getvalue().decode("utf-8", errors="replace"))
    return subprocess.CompletedProcess(["genseq", *args], code, *texts)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """A user error: exit status 2 and one line on stderr naming every fragment, no traceback."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
