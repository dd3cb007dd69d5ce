"""Device, precision, threads and random state: the facts of the machine a command runs on."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import platform
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from genseq.errors import ConfigError


def choose_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA, then Apple's MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu or auto")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("--device mps was asked for but Apple's MPS is not available; use --device cpu or auto")
    if name not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or mps")
    return torch.device(name)


@functools.cache
def cpu_info() -> tuple[str, str]:
    """This CPU's model name and feature flags (from /proc/cpuinfo; elsewhere the platform's name, no flags)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return platform.processor() or platform.machine(), ""
    fields = {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in lines)}
    return fields.get("model name", platform.processor() or platform.machine()), fields.get("flags", "")


NO_BF16_VARIABLE = "GENSEQ_NO_BF16"
"""Set to 1 and genseq treats this CPU as one without native bf16 (as an AVX2-only CPU): what such a CPU
would run, refuse and plan can be seen, and tested, on any machine."""


def bf16_masked() -> bool:
    """Whether `NO_BF16_VARIABLE` masks this CPU's native bf16."""
    return os.environ.get(NO_BF16_VARIABLE, "").strip() not in ("", "0")


def cpu_supports_bf16() -> bool:
    """True when this CPU runs bf16 LSTMs natively (AVX512-BF16 or AMX) and `GENSEQ_NO_BF16` does not mask it.
    On AVX2-only CPUs (no bf16) fp32 is the only fast training path."""
    return not bf16_masked() and _cpu_runs_bf16()


@functools.cache
def _cpu_runs_bf16() -> bool:
    """Whether this CPU's flags say AVX512-BF16 or AMX and oneDNN agrees.

    The flags alone are not enough: oneDNN limited by ONEDNN_MAX_CPU_ISA, or a build without bf16
    kernels, refuses a bf16 LSTM with a traceback, so a tiny one is tried once.
    """
    flags = cpu_info()[1].split()
    if "avx512_bf16" not in flags and "amx_bf16" not in flags:
        return False
    try:
        with torch.inference_mode(False), torch.enable_grad():  # the first call may come from inside the sampler
            lstm = torch.nn.LSTM(16, 16, batch_first=True)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out, _ = lstm(torch.zeros(1, 2, 16))
            out.float().sum().backward()
    except RuntimeError:
        return False
    return True


def native_precisions(device: torch.device) -> list[str]:
    """The training precisions this device runs natively, fp32 first (fp16 only where asked for, on CUDA)."""
    if device.type == "cuda":
        return ["fp32", "bf16"] if torch.cuda.is_bf16_supported() else ["fp32"]
    return ["fp32", "bf16"] if device.type == "cpu" and cpu_supports_bf16() else ["fp32"]


def choose_precision(name: str, device: torch.device) -> str:
    """`auto`: bf16 where the hardware runs it natively, else fp32. A precision it cannot run is a one-line error."""
    if name == "auto":
        return native_precisions(device)[-1]
    if name not in ("fp32", "bf16", "fp16"):
        raise ConfigError(f"unknown precision {name!r}; use auto, fp32, bf16 or fp16")
    if name == "fp16" and device.type != "cuda":
        raise ConfigError("fp16 training needs a CUDA GPU; use --precision bf16 or fp32 on this device")
    if name == "bf16" and name not in native_precisions(device):
        masked = f", masked by {NO_BF16_VARIABLE}" if bf16_masked() else ""
        what = f"this CPU has no native bf16 (AVX512-BF16 or AMX{masked})" if device.type == "cpu" else \
            f"this {device.type} device does not run bf16"
        raise ConfigError(f"--precision bf16: {what}; use --precision fp32 or auto")
    return name


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The mixed-precision context for `precision` (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # mallopt parameters, from glibc's malloc.h
_GLIBC_DEFAULTS = {_M_TRIM_THRESHOLD: 128 * 1024, _M_MMAP_MAX: 65536}


@contextlib.contextmanager
def heap_kept() -> Iterator[None]:
    """Within: glibc's malloc serves big blocks from its heap and keeps what is freed, instead of mmap per block.

    A training step frees and allocates again hundreds of MB of activations. With glibc's defaults every
    block over 32 MB is a fresh mmap whose pages fault in again at every step: a quarter of the step here
    (benchmarks.train_speed: the bf16 step 18.1k -> 23.5k chars/s, the plain fp32 loop 11.5k -> 14.4k).
    Other threads' arenas, which cannot grow a heap past 64 MB, still fall back to mmap for bigger blocks.
    glibc only (elsewhere a no-op). On leaving, the default values come back and the kept memory is
    returned; glibc's dynamic mmap threshold, which any mallopt call switches off, stays off.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        yield
        return
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
    libc.mallopt(_M_MMAP_MAX, 0)
    try:
        yield
    finally:
        for parameter, value in _GLIBC_DEFAULTS.items():
            libc.mallopt(parameter, value)
        libc.malloc_trim(0)


def available_cores() -> int:
    """The cores this process may run on (fewer than the machine's under taskset or a container limit)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def set_threads(threads: int | None = None) -> None:
    """Use every core this process may run on (PyTorch's default can leave some idle), shared among local processes."""
    if threads is None and os.environ.get("OMP_NUM_THREADS", "").isdigit():  # the user's (or torchrun's) choice
        threads = int(os.environ["OMP_NUM_THREADS"])
    if threads is None:
        threads = available_cores() // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))  # torchrun: cores are shared
    torch.set_num_threads(max(1, threads))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Random state as tensors and plain data, so a checkpoint stores it without pickled objects."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def make_generator(seed: int | None) -> torch.Generator:
    """A private generator for sampling, so sampling never disturbs the global random state."""
    generator = torch.Generator()
    generator.manual_seed(seed if seed is not None else int(torch.randint(0, 2**62, (1,)).item()))
    return generator
