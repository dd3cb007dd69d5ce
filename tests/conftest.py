import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")


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


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `python -m genseq ARGS` as a user would, capturing its output."""
    return subprocess.run([sys.executable, "-m", "genseq", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ}, timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """A user error: exit status 2 and one line on stderr naming every fragment, no traceback."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
