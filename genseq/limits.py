"""Bounds on what a user may ask for, shared by the CLI, the Python API and the studio.

Each bound is checked where a value enters the library (the configs, the transposer, the model's
construction), so every front end refuses the same things with the same one-line message.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

from genseq.errors import ConfigError, InputError

MAX_TRANSPOSE = 48
"""Semitones a sample may be moved, either way: four octaves take any tune off a piano's keys."""
SEED_RANGE = (0, 2**64 - 1)
"""Seeds torch's generator takes (a larger one fails mid-stream)."""
MAX_JSON_DEPTH = 32
"""Nesting of a JSON request body: a studio request is two levels deep."""
SAMPLED_TOKEN_BYTES = 24
"""Memory per token drawn: the sampler's int64 tensor, the list of ids and the decoded document."""
MEMORY_HEADROOM = 0.9
"""Share of the available memory a model or a batch of samples may take."""
MAX_REFERENCE = 500
"""Reference pieces the judge measures (a random subset of a larger reference): parsing costs ~0.05 s per ABC
tune."""


def check_transpose(semitones: int) -> int:
    """`semitones` if it lies within ±MAX_TRANSPOSE, else a ConfigError."""
    if isinstance(semitones, bool) or not isinstance(semitones, int) or abs(semitones) > MAX_TRANSPOSE:
        raise ConfigError(f"--transpose must lie in -{MAX_TRANSPOSE}..{MAX_TRANSPOSE} semitones, got {semitones!r}")
    return semitones


def check_seed(seed: int | None) -> None:
    low, high = SEED_RANGE
    if seed is not None and not low <= seed <= high:
        raise ConfigError(f"--seed must lie in {low}..2**64-1, got {seed}")


def available_memory(device: Any = None) -> int:
    """Bytes free for new allocations: the GPU's free memory on CUDA, else the system's MemAvailable."""
    if getattr(device, "type", None) == "cuda":
        import torch

        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: no refusal


def human_bytes(size: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if size < 1000 or unit == "PB":
            return f"{size:,.0f} {unit}" if unit == "bytes" else f"{size:,.1f} {unit}"
        size /= 1000
    raise AssertionError


def check_memory(needed: float, what: str, fix: str, device: Any = None) -> None:
    """ConfigError when `needed` bytes exceed what this machine (or `device`) can give, naming the estimate."""
    free = available_memory(device)
    if needed > MEMORY_HEADROOM * free:
        where = "this GPU has" if getattr(device, "type", None) == "cuda" else "this machine has"
        raise ConfigError(f"{what} needs about {human_bytes(needed)} of memory and {where} "
                          f"{human_bytes(free)} free; {fix}")


def lstm_parameters(vocab_size: int, hidden_size: int, num_layers: int, embedding_size: int | None,
                    tie_weights: bool = False) -> int:
    """Parameters of the stacked LSTM language model of this shape (embedding, LSTM layers, head)."""
    embedding = embedding_size or hidden_size
    lstm = 4 * hidden_size * (embedding + hidden_size) + 8 * hidden_size
    lstm += (num_layers - 1) * (4 * hidden_size * 2 * hidden_size + 8 * hidden_size)
    head = vocab_size * (0 if tie_weights else hidden_size) + vocab_size
    return vocab_size * embedding + lstm + head


def training_bytes(parameters: int, batch_size: int, seq_len: int, hidden_size: int, num_layers: int,
                   vocab_size: int) -> int:
    """Weights, gradients and AdamW's two moments (fp32), and one window's activations kept for backward."""
    return 16 * parameters + 4 * batch_size * seq_len * (12 * hidden_size * num_layers + 3 * vocab_size)


def sampling_bytes(length: int, num_samples: int) -> int:
    return length * num_samples * SAMPLED_TOKEN_BYTES


_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def json_depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects in JSON text (strings skipped), without parsing it."""
    depth = deepest = 0
    for match in _JSON_TOKENS.finditer(data):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in (b"]", b"}"):
            depth -= 1
    return deepest


def read_json_number(key: str, value: Any, kind: type, default: Any) -> Any:
    """A setting from a JSON request: absent is `default`; a number or numeric string of `kind` (int or float),
    finite; booleans, lists and objects are refused with a one-line InputError naming `key`."""
    if value is None or value == "":
        return default
    name = key.replace("_", " ")
    wanted = "a whole number" if kind is int else "a number"
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InputError(f"{name} must be {wanted}, got {shown}")
    try:
        parsed = float(value) if kind is float or isinstance(value, float) else int(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{name} must be {wanted}, got {shown}") from None
    if isinstance(parsed, float) and not math.isfinite(parsed):
        raise InputError(f"{name} must be a finite number, got {shown}")
    if kind is int and parsed != int(parsed):
        raise InputError(f"{name} must be a whole number, got {shown}")
    return kind(parsed)


__all__ = ["MAX_JSON_DEPTH", "MAX_TRANSPOSE", "SEED_RANGE", "available_memory", "check_memory", "check_seed",
           "check_transpose", "json_depth", "lstm_parameters", "read_json_number", "sampling_bytes", "training_bytes"]
