"""The planning rule's one measurement: how long a real training step of a shape takes on this machine.

Kept apart from the rule (`planning`), which only predicts, so the rule reads without the trainer and the
trainer can read the rule's schedule constants without a circle.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from genseq.files import write_atomic
from genseq.lm.config import ModelConfig, TrainConfig
from genseq.lm.planning import Shape
from genseq.lm.runtime import NO_BF16_VARIABLE, available_cores, cpu_info, heap_kept
from genseq.lm.training import Trainer


def machine_name() -> str:
    """This CPU in words, with the vector units that decide genseq's speed (for benchmark headers)."""
    name, flags = cpu_info()
    units = [unit for flag, unit in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX512-BF16"), ("avx512f", "AVX-512"),
                                     ("avx2", "AVX2")) if flag in flags.split()]
    return f"{name} ({', '.join(units) or 'no AVX2'}), {available_cores()} cores"


def machine_key(device: torch.device, threads: int) -> str:
    """Names this CPU (model and flags), torch version, thread count and the kernel limits set in the environment
    (ONEDNN_MAX_CPU_ISA, ATEN_CPU_CAPABILITY, GENSEQ_NO_BF16): a probe is valid for exactly these."""
    cpu = "|".join(cpu_info())
    if device.type == "cuda":
        cpu = torch.cuda.get_device_name(device)
    limits = [os.environ.get(name, "") for name in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", NO_BF16_VARIABLE)]
    identity = json.dumps([cpu, str(torch.__version__), threads, device.type, *limits])
    return hashlib.sha256(identity.encode()).hexdigest()[:16]




def time_training_step(shape: Shape, precision: str, device: torch.device, vocab_size: int = 128,
                       seconds: float = 0.6) -> float:
    """The median time of 3-5 real `Trainer` steps of `shape` on random tokens (after one untimed step),
    with the heap kept as `Trainer.run` keeps it (without, a step here can take 10x longer).

    Three at least: with two, one slow step could decide, and the plan took a smaller shape than the machine's
    speed called for."""
    tokens = np.random.default_rng(0).integers(0, vocab_size, shape.tokens_per_step * 4 + 1, dtype=np.int32)
    config = TrainConfig(seq_len=shape.seq_len, batch_size=shape.batch_size, steps=10**9, precision=precision,
                         device=device.type, warmup_steps=1)
    model = ModelConfig(vocab_size, shape.hidden_size, shape.num_layers, dropout=0.1)
    with tempfile.TemporaryDirectory() as folder, heap_kept():
        trainer = Trainer(model, config, tokens, tokens[: shape.tokens_per_step + 1], Path(folder), {})
        trainer.train_step()
        times: list[float] = []
        started = time.perf_counter()
        while len(times) < 3 or (len(times) < 5 and time.perf_counter() - started < seconds):
            t = time.perf_counter()
            trainer.train_step()
            times.append(time.perf_counter() - t)
    return float(np.median(times))


class StepProbe:
    """Step times of candidate shapes here, measured once and cached per machine and torch version."""

    def __init__(self, device: torch.device, threads: int, cache: Path | None):
        self.device = device
        self.path = cache / "probe" / f"{machine_key(device, threads)}.json" if cache else None
        self.times: dict[str, float] = {}
        if self.path is not None and self.path.exists():
            try:
                self.times = json.loads(self.path.read_text(encoding="utf-8"))
            except ValueError:
                self.times = {}

    def __call__(self, shape: Shape, precision: str) -> float:
        key = f"{shape.key}/{precision}"
        if key not in self.times:
            self.times[key] = time_training_step(shape, precision, self.device)
            if self.path is not None:
                write_atomic(self.path, json.dumps(self.times, indent=1, sort_keys=True))
        return self.times[key]
