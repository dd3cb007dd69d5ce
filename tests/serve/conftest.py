"""Fixtures of the studio's tests: a runs folder with one run, and a test client of the studio over it."""

import json
import shutil
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from genseq.lm.checkpoint import shipped_models
from genseq.serve import create_app
from tests.helpers import FOLK, LOCAL


@pytest.fixture
def runs(tmp_path) -> Path:
    """A runs folder holding one run: a copy of the shipped folk model with its config and metrics."""
    run = tmp_path / "runs" / "my-folk-run"
    run.mkdir(parents=True)
    shutil.copy(shipped_models()[FOLK], run / "best.pt")
    (run / "config.json").write_text(json.dumps({"model": {"num_layers": 2, "hidden_size": 256},
                                                 "data": {"corpus": "folk-abc", "tokenizer_kind": "abc"}}))
    (run / "metrics.jsonl").write_text('{"step": 10, "val_loss": 1.25}\n{"step": 20, "val_loss": 0.95}\n')
    return tmp_path / "runs"


@pytest.fixture
def client(runs):
    with TestClient(create_app(runs), base_url=LOCAL) as test_client:
        yield test_client
