"""The package's layers (pyproject.toml's import-linter contracts) hold, and the public names load from `genseq`."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_contracts_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if lint is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    result = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


def test_public_names_load_from_genseq_without_torch_until_used():
    """`genseq --help` and `import genseq` stay fast: torch loads only when a public name is first used."""
    code = ("import sys, genseq; assert 'torch' not in sys.modules, 'torch at import'; "
            "genseq.load; assert 'torch' in sys.modules; assert callable(genseq.judge) and genseq.judge.table")
    subprocess.run([sys.executable, "-c", code], check=True)
