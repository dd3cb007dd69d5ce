"""One file per checkpoint: format version, configs, tokenizer, weights, training state.

Only tensors and plain data (dict, list, str, int, float, bool, None) are stored, and files are
read with `torch.load(weights_only=True)`, whose unpickler refuses every other object: loading a
checkpoint never runs code from it. A SHA-256 digest of every tensor's bytes is written beside them
and checked on load, so damaged weights are refused rather than sampled (files written before the
digest existed load unchecked).
"""

from __future__ import annotations

import hashlib
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
DIGEST = "tensors_sha256"
"""The payload key of the digest (`tensor_digest`) of every tensor in the checkpoint."""
REQUIRED = {"model_config": dict, "model": dict}
"""What every checkpoint holds, by type: enough to rebuild the model (and resume its run)."""
TYPED = {**REQUIRED, "tokenizer": dict}
"""The types of the fields a checkpoint may hold; `tokenizer` is absent where a `Trainer` was given none (a
user's own loop): such a file resumes training, and `TrainedModel` refuses to sample from it."""


def tensor_digest(payload: Any) -> str:
    """SHA-256 over each tensor's name path, dtype, shape and bytes, walking dicts (by key) and lists in order."""
    digest = hashlib.sha256()

    def walk(value: Any, where: str) -> None:
        if isinstance(value, torch.Tensor):
            flat = value.detach().cpu().contiguous().reshape(-1)
            digest.update(f"{where}:{flat.dtype}:{tuple(value.shape)}".encode())
            digest.update(memoryview(flat.view(torch.uint8).numpy()))
        elif isinstance(value, dict):
            for key in sorted(value, key=str):
                if key != DIGEST:
                    walk(value[key], f"{where}/{key}")
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                walk(item, f"{where}/{index}")

    walk(payload, "")
    return digest.hexdigest()


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically: a temporary file in the same folder, fsync, then rename over `path`.

    A crash at any moment leaves either the previous complete file or the new complete file.
    """
    payload = {"format": FORMAT, "version": VERSION, **payload}
    payload[DIGEST] = tensor_digest(payload)
    with atomic_file(path, "checkpoint ") as handle:
        torch.save(payload, handle)


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
    """Read a checkpoint without executing anything stored in it; its weights must match their digest.

    A damaged best.pt or last.pt of a run folder is refused with a word on whether the other one is intact."""
    path = resolve_checkpoint(path)
    try:
        return _read(path)
    except CheckpointError as err:
        raise CheckpointError(f"{err}{_sibling_state(path)}") from None


def _sibling_state(path: Path) -> str:
    """"; best.pt beside it is intact" (or damaged too) for best.pt and last.pt of a run folder, else ""."""
    other = {"best.pt": "last.pt", "last.pt": "best.pt"}.get(path.name)
    if other is None or not (path.parent / other).is_file() or (path.parent / other).is_symlink():
        return ""
    try:
        step = (_read(path.parent / other).get("progress") or {}).get("step")
    except CheckpointError:
        return f"; {other} beside it is damaged too"
    return (f"; {other} beside it is intact (step {step}): sample from {path.parent / other}, or copy it over "
            f"{path.name} to resume from there")


def _read(path: Path) -> dict[str, Any]:
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
    for key, kind in TYPED.items():
        if (key in REQUIRED or key in payload) and not isinstance(payload.get(key), kind):
            problem = "lacks" if key not in payload else f"has a {type(payload[key]).__name__} for"
            raise CheckpointError(f"{path} is a damaged genseq checkpoint: it {problem} its {key!r}; "
                                  "give a file written by `genseq train`")
    if DIGEST in payload and payload[DIGEST] != tensor_digest(payload):
        raise CheckpointError(f"{path} is damaged: its tensors do not match the SHA-256 digest written with them")
    return payload
