"""One file per checkpoint: format version, configs, tokenizer, weights, training state.

Only tensors and plain data (dict, list, str, int, float, bool, None) are stored, and files are
read with `torch.load(weights_only=True)`, whose unpickler refuses every other object: loading a
checkpoint never runs code from it.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from genseq.errors import CheckpointError
from genseq.files import atomic_file

FORMAT = "genseq-checkpoint"
VERSION = 1


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically: a temporary file in the same folder, fsync, then rename over `path`.

    A crash at any moment leaves either the previous complete file or the new complete file.
    """
    with atomic_file(path, "checkpoint ") as handle:
        torch.save({"format": FORMAT, "version": VERSION, **payload}, handle)


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file from a file path or a run folder (its best.pt, else last.pt)."""
    path = Path(path).expanduser()
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f"{path} is a folder without best.pt or last.pt; give a checkpoint file or a run folder")
    if not path.is_file():
        shipped = shipped_models()
        if str(path) in shipped:
            return shipped[str(path)]
        raise CheckpointError(
            f"{path}: no such checkpoint file or run folder (shipped models: {', '.join(sorted(shipped)) or 'none'})"
        )
    return path


def shipped_models() -> dict[str, Path]:
    """The small pretrained models that come with genseq (the repository's checkpoints/*.pt), by name."""
    folder = resources.files("genseq.pretrained")
    return {e.name.removesuffix(".pt"): Path(str(e)) for e in folder.iterdir() if e.name.endswith(".pt")}


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint without executing anything stored in it."""
    path = resolve_checkpoint(path)
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} is not a readable genseq checkpoint (not a torch zip archive); check the path")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        reason = f"it names {found.group(1)}" if found else "its pickle is not plain data"
        raise CheckpointError(
            f"{path} holds objects other than tensors and plain data ({reason}); refusing to load it "
            "because that could run code. Only load checkpoints written by genseq"
        ) from None
    except Exception as err:  # a damaged archive fails in many ways inside torch; all mean the same to a user
        raise CheckpointError(
            f"{path} is not a readable genseq checkpoint ({type(err).__name__}); check the path"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a genseq checkpoint; give a file written by `genseq train`")
    if payload.get("version") != VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {payload.get('version')!r}, this genseq reads version {VERSION}; "
            "use the genseq release that wrote it"
        )
    return payload
