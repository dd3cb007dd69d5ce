"""Fixtures every part of the suite uses: an isolated cache, a generated text corpus and a model trained on it."""

import os
from pathlib import Path

import pytest

from tests.helpers import generated_text


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test writes its caches and default run folders under a temporary directory."""
    monkeypatch.setenv("GENSEQ_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


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
