"""The whole GPU check in one call: the cuda tests, training and sampling speed, torchrun, quality per GPU minute.

    python -m scripts.gpu_prepare                                  # here: wheels and data into .gpu/
    bash scripts/gpu_device.sh                                     # there, with .gpu carried (docs/guide/gpu.md)
    python -m benchmarks.gpu --out DIR --data FILE [--budget S] [--parts env,sampling]
    python -m benchmarks.gpu --smoke --out DIR --data FILE         # tiny sizes in seconds, on the CPU too

Writes DIR/results.json, rewritten after every part (a run killed at its limit keeps what it had
measured), and DIR/gpu.log. Every part is guarded: a failure is logged with its traceback and the
next part runs; the exit status is 1 when any part failed. One budget (--budget seconds) is shared:
a part that no longer fits is skipped, and quality's minutes shrink to what is left (and say so).

  env          machine, driver, torch, CUDA, cuDNN, TF32 settings, package versions, matmul peaks
  cuda_tests   pytest -m cuda on tests/test_cuda.py and tests/lm/test_sampling.py
  train_speed  2x512 (batch 64, windows of 100) and 3x1024 (batch 128): the plain loop (cuDNN nn.LSTM, Adam,
               clip 5, fp32; and in bf16 autocast for reference) against genseq's Trainer.train_step in fp32,
               bf16 and fp16 autocast: chars/s, ratio to the plain fp32 loop, share of the matmul peak
  sampling     1 and 64 streams of a 2x512 model: the plain carried-state loop (nn.LSTM, multinomial, all on the
               GPU) against genseq's generate, and generate's per-token work over benchmarks.cudagraph.GraphedStep
  torchrun     torchrun --nproc-per-node 1: `genseq train`, then `--resume`; and a one-process NCCL group that
               drives the Trainer's own collectives and DDP (one process alone never joins a group)
  quality      the data file's last 10% held out: genseq's defaults (`api.train`, auto shape) and the plain loop
               at 2x512 (batch 64, windows of 100), 3 minutes each: validation nats/char
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from benchmarks.common import (
    PLAIN_DROPOUT,
    PLAIN_LR,
    PlainLSTM,
    PlainRun,
    flops_per_char,
    genseq_generate,
    load_text,
    matmul_peak,
    mean_seconds,
    plain_carried,
    synchronize,
)

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("env", "cuda_tests", "train_speed", "sampling", "torchrun", "quality")
T0_ENV = "GENSEQ_GPU_CHECK_T0"


@dataclass(frozen=True)
class Sizes:
    """How big each part runs: the real check, or the smoke run that proves the script on a CPU in seconds."""

    speed_shapes: tuple[tuple[str, int, int, int, int], ...]  # name, layers, hidden, batch, window
    speed_warmup: int
    speed_steps: int
    sample_shape: tuple[int, int]  # layers, hidden
    sample_length: int
    sample_rounds: int
    torchrun_args: tuple[str, ...]
    torchrun_steps: tuple[int, int]  # the first run's budget, then the resumed run's
    quality_minutes: float
    quality_min_minutes: float  # below this, quality is skipped rather than measured
    quality_reserve_s: float  # start-up, planning and evaluation of both quality runs
    quality_genseq: dict[str, Any] = field(default_factory=dict)  # api.train options beyond the defaults
    quality_plain: tuple[int, int, int, int] = (2, 512, 64, 100)  # layers, hidden, batch, window
    peak_size: int = 8192
    peak_seconds: float = 1.0  # each matmul peak: the best product timed for this long
    needs_s: dict[str, float] = field(default_factory=dict)  # the least time each part is started with
    budget_s: float = 470.0


FULL = Sizes(
    speed_shapes=(("2x512", 2, 512, 64, 100), ("3x1024", 3, 1024, 128, 100)), speed_warmup=5, speed_steps=30,
    sample_shape=(2, 512), sample_length=1000, sample_rounds=2,
    torchrun_args=("--layers", "2", "--hidden", "256", "--batch-size", "32", "--seq-len", "64"),
    torchrun_steps=(30, 60), quality_minutes=3.0, quality_min_minutes=0.5, quality_reserve_s=40,
    needs_s={"env": 10, "cuda_tests": 30, "train_speed": 20, "sampling": 10, "torchrun": 25, "quality": 90},
)
SMOKE = Sizes(
    speed_shapes=(("1x32", 1, 32, 8, 20),), speed_warmup=1, speed_steps=2, sample_shape=(1, 32), sample_length=20,
    sample_rounds=1, torchrun_args=("--layers", "1", "--hidden", "16", "--batch-size", "8", "--seq-len", "16"),
    torchrun_steps=(4, 8), quality_minutes=0.04, quality_min_minutes=0.01, quality_reserve_s=5,
    quality_genseq={"model": {"hidden_size": 16, "num_layers": 1}, "batch_size": 8, "seq_len": 16, "eval_every": 20},
    quality_plain=(1, 16, 8, 16), peak_size=256, peak_seconds=0.05,
    needs_s={"env": 1, "cuda_tests": 5, "train_speed": 2, "sampling": 1, "torchrun": 8, "quality": 5},
    budget_s=300.0,
)


class PartFailed(Exception):
    """A part that ran but did not pass: its result is kept beside the failure."""

    def __init__(self, message: str, result: Any):
        super().__init__(message)
        self.result = result


class PartSkipped(Exception):
    """A part that chose not to run (no time left for it): not a failure."""


def finite(value: Any) -> Any:
    """`value` with every non-finite float as None, so results.json is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment with the work tree first on the path, so `-m genseq` and `-m benchmarks.gpu` run from it."""
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT),
            "PYTHONUNBUFFERED": "1", **(extra or {})}


class Check:
    """One run of the check: the budget, the log, results.json and the guard around each part."""

    def __init__(self, out: Path, data: Path, sizes: Sizes, smoke: bool, budget: float, device: torch.device):
        self.out, self.data, self.sizes, self.smoke, self.device = out, data, sizes, smoke, device
        self.out.mkdir(parents=True, exist_ok=True)
        self.scratch = Path(tempfile.mkdtemp(prefix="genseq-gpu-"))
        self.started = time.monotonic()
        self.deadline = self.started + budget
        os.environ.setdefault(T0_ENV, str(time.time()))  # the log's clock: its parts and workers count from one start
        self.t0 = float(os.environ[T0_ENV])
        self.log_path = out / "gpu.log"
        self.log_path.write_text("", encoding="utf-8")
        self.peaks: dict[str, float] = {}
        self.results: dict[str, Any] = {
            "mode": "smoke" if smoke else "full", "device": str(device), "budget_s": budget,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "parts": {},
        }
        self.failures = 0
        self.injected: set[str] = set()

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def log(self, message: str) -> None:
        line = f"[{time.time() - self.t0:7.1f}s] {message}"
        print(line, flush=True)
        with open(self.log_path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def save(self) -> None:
        self.results["elapsed_s"] = time.monotonic() - self.started
        temporary = self.out / ".results.json.tmp"
        temporary.write_text(json.dumps(finite(self.results), indent=2, allow_nan=False) + "\n", encoding="utf-8")
        temporary.replace(self.out / "results.json")

    def run_part(self, name: str, part: Callable[[Check], Any]) -> None:
        record: dict[str, Any] = {"status": "skipped"}
        self.results["parts"][name] = record
        need = self.sizes.needs_s.get(name, 0)
        if self.remaining() < need:
            record["reason"] = f"needs about {need:.0f} s, {max(self.remaining(), 0):.0f} s of the budget left"
            self.log(f"== {name}: skipped ({record['reason']})")
            self.save()
            return
        self.log(f"== {name} ({self.remaining():.0f} s of the budget left)")
        started = time.monotonic()
        try:
            if name in self.injected:
                raise RuntimeError(f"failure injected into {name} (--inject-failure)")
            record["result"] = part(self)
            record["status"] = "ok"
        except PartSkipped as skip:
            record["reason"] = str(skip)
        except PartFailed as failure:
            record.update(status="failed", error=str(failure), result=failure.result)
        except Exception as error:  # noqa: BLE001 - any failure of one part is recorded and the next part runs
            record.update(status="failed", error=f"{type(error).__name__}: {error}", traceback=traceback.format_exc())
            self.log(traceback.format_exc())
        finally:
            record["seconds"] = time.monotonic() - started
            if record["status"] == "failed":
                self.failures += 1
            self.log(f"== {name}: {record['status']} in {record['seconds']:.1f} s"
                     + (f" ({record.get('error') or record.get('reason')})" if record["status"] != "ok" else ""))
            self.cleanup()
            self.save()

    def cleanup(self) -> None:
        import gc

        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def run(self, command: list[str], timeout: float, env: dict[str, str] | None = None) -> tuple[int, str]:
        """Run `command` from the work tree, its output written straight into the log (so a run killed from
        outside keeps it) and returned. Past `timeout` it is killed with the processes it started (its own
        process group) and reads as exit status 124."""
        timeout = max(1.0, min(timeout, self.remaining() + 30))
        self.log("$ " + " ".join(command))
        with open(self.log_path, "ab") as handle:
            start = handle.tell()
            process = subprocess.Popen(command, cwd=ROOT, env=subprocess_env(env), stdout=handle,
                                       stderr=subprocess.STDOUT, start_new_session=True)
            try:
                code = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, 9)
                process.wait()
                code = 124
        with open(self.log_path, "rb") as handle:
            handle.seek(start)
            output = handle.read().decode("utf-8", "replace")
        if code == 124:
            self.log(f"[killed after {timeout:.0f} s]")
            output += f"\n[killed after {timeout:.0f} s]"
        return code, output


# -- env ------------------------------------------------------------------------------------------


def package_versions() -> dict[str, Any]:
    """genseq's requirements (pyproject.toml) with the version found and whether it satisfies them."""
    import importlib.metadata
    import tomllib

    from packaging.requirements import Requirement

    rows = {}
    requirements = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    for line in requirements:
        requirement = Requirement(line)
        try:
            version = importlib.metadata.version(requirement.name)
            rows[requirement.name] = {"version": version, "wanted": str(requirement.specifier),
                                      "ok": requirement.specifier.contains(version, prereleases=True)}
        except importlib.metadata.PackageNotFoundError:
            rows[requirement.name] = {"version": None, "wanted": str(requirement.specifier), "ok": False}
    return rows


def part_env(check: Check) -> dict[str, Any]:
    import genseq

    info: dict[str, Any] = {
        "python": platform.python_version(), "executable": sys.executable, "torch": torch.__version__,
        "genseq": genseq.__version__, "cpu_cores": os.cpu_count(), "cuda_available": torch.cuda.is_available(),
        "packages": package_versions(),
    }
    try:
        info["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                            timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None  # the device machine may have no git; the tree travels without .git history
    if check.device.type == "cuda":
        props = torch.cuda.get_device_properties(check.device)
        info.update(
            gpu=props.name, capability=f"{props.major}.{props.minor}", gpu_memory_gib=props.total_memory / 2**30,
            multiprocessors=props.multi_processor_count, cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(), bf16_supported=torch.cuda.is_bf16_supported(),
            tf32_matmul=torch.backends.cuda.matmul.allow_tf32, tf32_cudnn=torch.backends.cudnn.allow_tf32,
            cudnn_rnn_fp32_precision=getattr(getattr(torch.backends.cudnn, "rnn", None), "fp32_precision", None),
        )
        with contextlib.suppress(Exception):  # a build without NCCL, or a version given as one int
            version = torch.cuda.nccl.version()
            info["nccl"] = ".".join(map(str, version)) if isinstance(version, tuple) else str(version)
        if shutil.which("nvidia-smi"):
            query = "name,driver_version,memory.total,clocks.max.sm,power.limit"
            code, output = check.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"], 30)
            info["nvidia_smi"] = output.strip() if code == 0 else f"exit {code}"
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    if check.device.type == "cuda":
        dtypes["fp16"] = torch.float16
    for name, dtype in dtypes.items():
        check.peaks[name] = matmul_peak(dtype, check.device, check.sizes.peak_size, check.sizes.peak_seconds)
    if check.device.type == "cuda":  # what fp32 products run at where TF32 is allowed, as in cuDNN's LSTM by default
        before = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = True
        try:
            check.peaks["tf32"] = matmul_peak(torch.float32, check.device, check.sizes.peak_size,
                                             check.sizes.peak_seconds)
        finally:
            torch.backends.cuda.matmul.allow_tf32 = before
    info["matmul_peak_tflops"] = {name: peak / 1e12 for name, peak in check.peaks.items()}
    info["matmul_peak_note"] = (f"{check.sizes.peak_size}^3 product, the best of those timed for "
                                f"{check.sizes.peak_seconds:g} s; fp32 without TF32, tf32 with it. "
                                "fp32 training rows are set against tf32 where cuDNN may use it (allow_tf32)")
    check.log(json.dumps(finite(info)))
    return info


# -- cuda tests -----------------------------------------------------------------------------------


def part_cuda_tests(check: Check) -> dict[str, Any]:
    junit = check.scratch / "cuda-tests.xml"
    command = [sys.executable, "-m", "pytest", "-m", "cuda", "-rs", "-p", "no:cacheprovider", "-o", "addopts=",
               "--continue-on-collection-errors", f"--junitxml={junit}",
               "tests/test_cuda.py", "tests/lm/test_sampling.py"]
    if importlib.util.find_spec("pytest_timeout"):  # the image has it: a hung test fails alone
        command[3:3] = ["-p", "pytest_timeout", "--timeout", "120"]
    code, output = check.run(command, timeout=200, env={"GENSEQ_CACHE": str(check.scratch / "test-cache")})
    result: dict[str, Any] = {"returncode": code, "tail": output[-2000:]}
    if junit.exists():
        suite = ElementTree.parse(junit).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        counts = {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}
        counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
        result.update(counts)
        result["failed_tests"] = [
            {"test": f"{case.get('classname')}::{case.get('name')}", "message": (problem.get("message") or "")[:500]}
            for case in suite.iter("testcase") for problem in case if problem.tag in ("failure", "error")]
        result["skipped_tests"] = sorted({(problem.get("message") or "")[:200] for case in suite.iter("testcase")
                                          for problem in case if problem.tag == "skipped"})
    if code != 0:
        raise PartFailed(f"pytest -m cuda exited with {code}", result)
    return result


# -- training speed -------------------------------------------------------------------------------


def memory_mib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def plain_speed(check: Check, data: tuple, layers: int, hidden: int, batch: int, seq_len: int,
                amp: torch.dtype | None) -> dict[str, Any]:
    train_ids, _, vocab = data
    run = PlainRun(train_ids, vocab, check.device, layers, hidden, batch, seq_len, amp)
    seconds, loss = mean_seconds(lambda: run.step().item(), check.sizes.speed_warmup, check.sizes.speed_steps,
                                check.device)
    return {"chars_per_s": run.chars_per_step / seconds, "ms_per_step": 1000 * seconds, "last_loss": loss}


def genseq_speed(check: Check, data: tuple, layers: int, hidden: int, batch: int, seq_len: int,
                 precision: str) -> dict[str, Any]:
    """Seconds per `Trainer.train_step` (what `genseq train` runs each step) in `precision`, inside heap_kept."""
    from genseq.lm.config import ModelConfig, TrainConfig
    from genseq.lm.runtime import heap_kept
    from genseq.lm.training import Trainer

    train_ids, val_ids, vocab = data
    model_config = ModelConfig(vocab_size=vocab, hidden_size=hidden, num_layers=layers, dropout=PLAIN_DROPOUT)
    config = TrainConfig(seq_len=seq_len, batch_size=batch, steps=10**6, precision=precision,
                         device=check.device.type, eval_tokens=4096, eval_every=10**6, seed=0)
    with tempfile.TemporaryDirectory(dir=check.scratch) as folder:
        trainer = Trainer(model_config, config, train_ids.astype(np.int32), val_ids.astype(np.int32), Path(folder), {})
        with heap_kept():
            seconds, loss = mean_seconds(trainer.train_step, check.sizes.speed_warmup, check.sizes.speed_steps,
                                        check.device)
        scale = trainer.scaler.get_scale() if trainer.scaler.is_enabled() else None
    if not math.isfinite(loss):
        raise RuntimeError(f"non-finite loss {loss} after {check.sizes.speed_warmup + check.sizes.speed_steps} steps")
    return {"chars_per_s": batch * seq_len / seconds, "ms_per_step": 1000 * seconds, "last_loss": loss,
            "precision": trainer.precision, "loss_scale": scale}


def part_train_speed(check: Check) -> dict[str, Any]:
    from genseq.errors import ConfigError
    from genseq.lm.runtime import native_precisions

    data = load_text(check.data)
    vocab = data[2]
    rows: dict[str, Any] = {}
    failed = []
    low = torch.bfloat16
    fp32_peak = "tf32" if check.device.type == "cuda" and torch.backends.cudnn.allow_tf32 else "fp32"
    for name, layers, hidden, batch, seq_len in check.sizes.speed_shapes:
        shape = (layers, hidden, batch, seq_len)
        runs: dict[str, tuple[Callable[[], dict], str]] = {
            "plain fp32": (lambda s=shape: plain_speed(check, data, *s, None), fp32_peak),
            "plain bf16 autocast": (lambda s=shape: plain_speed(check, data, *s, low), "bf16"),
            "genseq fp32": (lambda s=shape: genseq_speed(check, data, *s, "fp32"), fp32_peak),
            "genseq bf16": (lambda s=shape: genseq_speed(check, data, *s, "bf16"), "bf16"),
            "genseq fp16": (lambda s=shape: genseq_speed(check, data, *s, "fp16"), "fp16"),
        }
        for label, (run, peak_name) in runs.items():
            key = f"{name} {label}"
            if check.remaining() < 10:
                rows[key] = {"status": "skipped", "reason": "budget spent"}
                continue
            if peak_name == "bf16" and "bf16" not in native_precisions(check.device):
                rows[key] = {"status": "unavailable", "reason": f"no native bf16 on this {check.device.type}"}
                check.log(f"{key}: {json.dumps(rows[key])}")
                continue
            if check.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(check.device)
            try:
                row = run()
                row["memory_mib"] = memory_mib(check.device)
                peak = check.peaks.get(peak_name)
                if peak:
                    row["peak_fraction"] = row["chars_per_s"] * flops_per_char(vocab, hidden, layers) / peak
                    row["peak"] = peak_name
                rows[key] = {"status": "ok", **row}
            except ConfigError as error:  # a precision this device does not run (fp16 on a CPU)
                rows[key] = {"status": "unavailable", "reason": str(error)}
            except Exception as error:  # noqa: BLE001 - one configuration failing must not lose the others
                rows[key] = {"status": "failed", "error": f"{type(error).__name__}: {error}"}
                failed.append(key)
                check.log(traceback.format_exc())
            check.log(f"{key}: {json.dumps(finite(rows[key]))}")
            check.cleanup()
        base = rows.get(f"{name} plain fp32", {}).get("chars_per_s")
        for label in runs:
            row = rows.get(f"{name} {label}", {})
            if base and row.get("chars_per_s"):
                row["x_plain_fp32"] = row["chars_per_s"] / base
    if failed:
        raise PartFailed(f"failed: {', '.join(failed)}", rows)
    return rows


# -- sampling -------------------------------------------------------------------------------------


def graphed_generate(model: nn.Module, batch: int, length: int, graph: bool) -> float:
    """chars/s of generate's per-token work (next_token_probs on the device, the draw on the host, the token
    back) over `GraphedStep`; the set-up (and the graph's capture) counted in."""
    from benchmarks.cudagraph import GraphedStep
    from genseq.lm.sampling import draw, next_token_probs

    started = time.perf_counter()
    step = GraphedStep(model, batch, graph=graph)
    generator = torch.Generator().manual_seed(0)
    token = torch.zeros(batch, dtype=torch.long)
    with torch.inference_mode():
        for _ in range(length):
            logits = step(token)
            token = draw(next_token_probs(logits, 1.0, None, None).cpu(), generator)
    return batch * length / (time.perf_counter() - started)


def part_sampling(check: Check) -> dict[str, Any]:
    from genseq.lm.config import ModelConfig
    from genseq.lm.model import LSTMLanguageModel

    device, (layers, hidden), length = check.device, check.sizes.sample_shape, check.sizes.sample_length
    vocab = 65
    torch.manual_seed(0)
    plain = PlainLSTM(vocab, hidden, layers).to(device).eval()
    model = LSTMLanguageModel(ModelConfig(vocab_size=vocab, hidden_size=hidden, num_layers=layers)).to(device).eval()
    graph = device.type == "cuda"
    runs: dict[str, Callable[[], float]] = {}
    for batch in (1, 64):
        runs[f"plain carried, {batch}"] = lambda b=batch: plain_carried(plain, b, length, device)
        runs[f"genseq generate, {batch}"] = lambda b=batch: genseq_generate(model, b, length, precision="fp32")
        runs[f"genseq per-token work over GraphedStep{'' if graph else ' (eager: no CUDA)'}, {batch}"] = (
            lambda b=batch: graphed_generate(model, b, length, graph))
    rows: dict[str, Any] = {name: {"chars_per_s": 0.0} for name in runs}
    failed = set()
    for _ in range(check.sizes.sample_rounds):  # interleaved rounds, the best kept
        for name, run in runs.items():
            if name in failed:
                continue
            try:
                rows[name]["chars_per_s"] = max(rows[name]["chars_per_s"], run())
            except Exception as error:  # noqa: BLE001 - the other loops still run
                rows[name] = {"status": "failed", "error": f"{type(error).__name__}: {error}"}
                failed.add(name)
                check.log(traceback.format_exc())
    for name, row in rows.items():
        base = rows[f"plain carried, {name.rsplit(', ', 1)[1]}"].get("chars_per_s")
        if base and row.get("chars_per_s"):
            row["x_plain_carried"] = row["chars_per_s"] / base
        check.log(f"{name}: {json.dumps(finite(row))}")
    rows["model"] = f"{layers}x{hidden}, vocab {vocab}, random weights; {length} characters per sample, fp32"
    rows["generate_path"] = ("model.step + next_token_probs on the device, draw on the host (the CPU fast path is "
                             "CPU-only)" if device.type == "cuda" else "the CPU fast path (fastpath.LSTMStep)")
    if failed:
        raise PartFailed(f"failed: {', '.join(sorted(failed))}", rows)
    return rows


# -- torchrun -------------------------------------------------------------------------------------


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def last_json(output: str) -> dict[str, Any] | None:
    """The last line of `output` that is a JSON object (what a worker prints as its result)."""
    for line in reversed(output.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                return json.loads(line)
    return None


def part_torchrun(check: Check) -> dict[str, Any]:
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "1"]
    run_dir = check.scratch / "torchrun-run"
    first, second = check.sizes.torchrun_steps
    cache = {"GENSEQ_CACHE": str(check.scratch / "cache")}
    result: dict[str, Any] = {"process_group_note": "with one process genseq joins no process group (WORLD_SIZE=1), "
                              "so these two runs use no NCCL; the nccl_group check below does"}
    problems = []
    train = [*torchrun, "-m", "genseq", "train", str(check.data), "--steps", str(first), "--eval-every",
             str(max(1, first // 2)), *check.sizes.torchrun_args, "--device", check.device.type, "--name", str(run_dir),
             "--quiet"]
    code, output = check.run(train, timeout=100, env=cache)
    metrics = read_metrics(run_dir)
    result["train"] = {"returncode": code, "last_step": metrics[-1]["step"] if metrics else None,
                       "val_loss": metrics[-1].get("val_loss") if metrics else None}
    if code != 0 or not metrics or metrics[-1]["step"] != first:
        problems.append("train")
        result["train"]["tail"] = output[-1500:]
    else:
        code, output = check.run([*torchrun, "-m", "genseq", "train", "--resume", str(run_dir), "--steps",
                                  str(second), "--quiet"], timeout=100, env=cache)
        metrics = read_metrics(run_dir)
        steps = [m["step"] for m in metrics]
        result["resume"] = {"returncode": code, "steps_logged": steps,
                            "val_loss": metrics[-1].get("val_loss") if metrics else None}
        if code != 0 or not steps or steps[-1] != second or steps != sorted(set(steps)):
            problems.append("resume")
            result["resume"]["tail"] = output[-1500:]
        config = json.loads((run_dir / "config.json").read_text()) if (run_dir / "config.json").exists() else {}
        result["config"] = {k: config.get(k) for k in ("device", "precision", "processes")}
    worker = [*torchrun, "-m", "benchmarks.gpu", "--nccl-worker", "--data", str(check.data), "--out",
              str(check.scratch / "nccl"), *(["--smoke"] if check.smoke else [])]
    code, output = check.run(worker, timeout=100, env=cache)
    result["nccl_group"] = last_json(output) or {"returncode": code, "tail": output[-1500:]}
    if code != 0 or not result["nccl_group"].get("ok"):
        problems.append("nccl_group")
    if problems:
        raise PartFailed(f"failed: {', '.join(problems)}", result)
    return result


def char_ids(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    train_ids, val_ids, vocab = load_text(path)
    return train_ids.astype(np.int32), val_ids.astype(np.int32), vocab


def nccl_worker(args: argparse.Namespace) -> None:
    """Under torchrun with one process: a process group (NCCL on a GPU, gloo on a CPU) of one, with genseq's
    World forced active, so the Trainer's collectives, DDP and the gathered checkpoint all go through it;
    then a resume from that checkpoint. Prints one JSON line."""
    import torch.distributed as dist

    from genseq.lm import training
    from genseq.lm.config import ModelConfig, TrainConfig
    from genseq.lm.distributed import World

    class OneProcessGroup(World):
        @property
        def active(self) -> bool:  # World is active only for 2+ processes; here the one process talks to the group
            return True

    cuda = torch.cuda.is_available()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if cuda else "gloo")
    group = OneProcessGroup(rank=dist.get_rank(), size=dist.get_world_size(), local_rank=local_rank)
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    checks = {
        "sum": group.sum(1.5, 2.5) == [1.5, 2.5],
        "max": group.max(3.0) == 3.0,
        "gather": torch.equal(group.gather(torch.arange(4, device=device))[0].cpu(), torch.arange(4)),
        "gather_uint8": group.gather(torch.get_rng_state().to(device))[0].dtype == torch.uint8,
        "broadcast": group.broadcast({"a": [1, 2]}) == {"a": [1, 2]},
    }
    group.barrier()
    training.world = lambda: group  # the Trainer's own world() now returns the process group of one
    train_ids, val_ids, vocab = char_ids(args.data)
    hidden, steps = (16, 4) if args.smoke else (128, 20)
    model_config = ModelConfig(vocab_size=vocab, hidden_size=hidden, num_layers=2)
    run_dir = Path(args.out)
    config = TrainConfig(steps=steps, eval_every=steps // 2, batch_size=16, seq_len=32, eval_tokens=4096,
                         device="cuda" if cuda else "cpu")
    trainer = training.Trainer(model_config, config, train_ids, val_ids, run_dir, {})
    checks["ddp"] = isinstance(trainer.network, nn.parallel.DistributedDataParallel)
    first = trainer.run()
    payload = training.resume_payload(run_dir)
    config = TrainConfig(**{**config.__dict__, "steps": 2 * steps})
    resumed = training.Trainer(model_config, config, train_ids, val_ids, run_dir, {}, resume_from=payload).run()
    checks["resumed"] = resumed.progress.step == 2 * steps and first.progress.step == steps
    checks["finite"] = math.isfinite(resumed.progress.last_val_loss)
    print(json.dumps({"backend": dist.get_backend(), "checks": checks, "ok": all(checks.values()),
                      "val_loss": [first.progress.last_val_loss, resumed.progress.last_val_loss]}), flush=True)
    dist.destroy_process_group()


# -- quality --------------------------------------------------------------------------------------


def part_quality(check: Check) -> dict[str, Any]:
    sizes = check.sizes
    minutes = min(sizes.quality_minutes, (check.remaining() - sizes.quality_reserve_s) / 2 / 60)
    if minutes < sizes.quality_min_minutes:
        raise PartSkipped(f"{check.remaining():.0f} s of the budget left: under {sizes.quality_min_minutes} minutes "
                          "for each run")
    result: dict[str, Any] = {"minutes_each": minutes, "minutes_asked": sizes.quality_minutes}
    if minutes < sizes.quality_minutes:
        check.log(f"quality: {minutes:.2f} minutes each, not {sizes.quality_minutes}: what the budget leaves")
    problems = []
    for who in ("genseq", "plain"):
        command = [sys.executable, "-m", "benchmarks.gpu", "--quality-worker", who, "--minutes", f"{minutes:.4f}",
                   "--data", str(check.data), "--out", str(check.scratch / f"quality-{who}"),
                   *(["--smoke"] if check.smoke else [])]
        cache = {"GENSEQ_CACHE": str(check.scratch / "cache")}
        code, output = check.run(command, timeout=minutes * 60 + 120, env=cache)
        row = last_json(output)
        if code != 0 or row is None:
            problems.append(who)
            row = {"returncode": code, "tail": output[-1500:]}
        result[who] = row
    genseq_loss, plain_loss = result["genseq"].get("val_loss"), result["plain"].get("val_loss")
    if genseq_loss is not None and plain_loss is not None:
        result["plain_minus_genseq"] = plain_loss - genseq_loss
    if problems:
        raise PartFailed(f"failed: {', '.join(problems)}", result)
    return result


def quality_worker(args: argparse.Namespace) -> None:
    """One quality run on this machine's best device; prints one JSON line."""
    sizes = SMOKE if args.smoke else FULL
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    started = time.perf_counter()
    if args.quality_worker == "genseq":
        from genseq import api

        options = dict(sizes.quality_genseq)
        run_dir = Path(args.out)
        result = api.train(str(args.data), name=str(run_dir), minutes=args.minutes, progress=False, **options)
        config = json.loads((run_dir / "config.json").read_text())
        p = result.progress
        row = {"val_loss": p.best_val_loss, "last_val_loss": p.last_val_loss, "steps": p.step, "tokens": p.tokens_seen,
               "seconds": p.elapsed_seconds, "chars_per_s": p.tokens_seen / max(p.elapsed_seconds, 1e-9),
               "model": config.get("model"), "device": config.get("device"), "precision": config.get("precision"),
               "train": {k: config.get("train", {}).get(k) for k in ("seq_len", "batch_size", "learning_rate")},
               "plan": config.get("plan")}
    else:
        train_ids, val_ids, vocab = load_text(args.data)
        layers, hidden, batch, seq_len = sizes.quality_plain
        run = PlainRun(train_ids, vocab, device, layers, hidden, batch, seq_len)
        budget, steps = args.minutes * 60, 0
        started = time.perf_counter()
        while time.perf_counter() - started < budget:
            run.step()
            steps += 1
        synchronize(device)
        seconds = time.perf_counter() - started
        row = {"val_loss": run.evaluate(val_ids), "steps": steps, "seconds": seconds,
               "chars_per_s": steps * run.chars_per_step / seconds, "device": str(device),
               "shape": f"{layers}x{hidden}, batch {batch}, windows of {seq_len}, fp32, Adam {PLAIN_LR}"}
    if device.type == "cuda":
        row["memory_mib"] = memory_mib(device)
    row["wall_s"] = time.perf_counter() - started  # with data preparation, genseq's planning and the evaluations
    print(json.dumps(finite(row)), flush=True)


# -- main -----------------------------------------------------------------------------------------

WORKER_PARTS = {"env": 90, "train_speed": 240, "sampling": 120}
"""Parts that use the GPU in-process run in a fresh process each, at most these seconds: a CUDA error that
poisons a process's context, or a hang, costs that part alone."""
RESULT = "RESULT "


def in_worker(name: str) -> Callable[[Check], Any]:
    """The part `name` run by `python -m benchmarks.gpu --part-worker NAME`, which prints RESULT {json} last."""

    def part(check: Check) -> Any:
        command = [sys.executable, "-m", "benchmarks.gpu", "--part-worker", name, "--out", str(check.scratch / name),
                   "--data", str(check.data), "--budget", f"{check.remaining():.0f}",
                   "--peaks", json.dumps(check.peaks), *(["--smoke"] if check.smoke else [])]
        code, output = check.run(command, timeout=WORKER_PARTS[name])
        lines = [line[len(RESULT):] for line in output.splitlines() if line.startswith(RESULT)]
        if not lines:
            raise RuntimeError(f"the {name} worker exited with status {code} and no result; its output is in the log: "
                               + output[-600:])
        record = json.loads(lines[-1])
        if name == "env" and record.get("result"):
            check.peaks = {k: v * 1e12 for k, v in record["result"].get("matmul_peak_tflops", {}).items()}
        if record["status"] == "failed":
            raise PartFailed(record["error"], record.get("result"))
        return record["result"]

    return part


def part_worker(args: argparse.Namespace) -> int:
    """One part in this process; prints RESULT {"status", "result", "error"} as its last line."""
    sizes = SMOKE if args.smoke else FULL
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    check = Check(args.out, args.data, sizes, args.smoke, args.budget or sizes.budget_s, device)
    check.peaks = json.loads(args.peaks or "{}")
    functions = {"env": part_env, "train_speed": part_train_speed, "sampling": part_sampling}
    record: dict[str, Any] = {"status": "ok"}
    try:
        record["result"] = functions[args.part_worker](check)
    except PartFailed as failure:
        record.update(status="failed", error=str(failure), result=failure.result)
    except Exception as error:  # noqa: BLE001 - reported to the orchestrating process, which carries on
        check.log(traceback.format_exc())
        record.update(status="failed", error=f"{type(error).__name__}: {error}")
    finally:
        shutil.rmtree(check.scratch, ignore_errors=True)
    print(RESULT + json.dumps(finite(record), allow_nan=False), flush=True)
    return 0



def summary(check: Check) -> None:
    """The figures for a results page, one line each."""
    parts = check.results["parts"]
    check.log("== summary")
    for name, record in parts.items():
        check.log(f"{name}: {record['status']}" + (f" ({record.get('error') or record.get('reason')})"
                                                    if record["status"] != "ok" else ""))
    speed = parts.get("train_speed", {}).get("result") or {}
    for key, row in speed.items():
        if row.get("chars_per_s"):
            check.log(f"  train {key:28} {row['chars_per_s']:12,.0f} chars/s  x{row.get('x_plain_fp32', 0):.2f}"
                      f"  {row.get('memory_mib') or 0:8,.0f} MiB")
    sampling = parts.get("sampling", {}).get("result") or {}
    for key, row in sampling.items():
        if isinstance(row, dict) and row.get("chars_per_s"):
            check.log(f"  sample {key:55} {row['chars_per_s']:12,.0f} chars/s  x{row.get('x_plain_carried', 0):.2f}")
    quality = parts.get("quality", {}).get("result") or {}
    for who in ("genseq", "plain"):
        if isinstance(quality.get(who), dict) and quality[who].get("val_loss") is not None:
            row = quality[who]
            shape = row.get("model") or row.get("shape")
            check.log(f"  quality {who:7} {row['val_loss']:.4f} nats/char in {quality['minutes_each']:.2f} min, "
                      f"{row['steps']} steps, {row['chars_per_s']:,.0f} chars/s, {shape}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for results.json and gpu.log")
    parser.add_argument("--data", type=Path, required=True, help="UTF-8 text, e.g. tinyshakespeare.txt")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: proves the script, measures nothing")
    parser.add_argument("--budget", type=float, help="seconds for the whole check (default 470; smoke 300)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--inject-failure", default="", help=argparse.SUPPRESS)  # tests: these parts raise
    parser.add_argument("--quality-worker", choices=("genseq", "plain"), help=argparse.SUPPRESS)
    parser.add_argument("--nccl-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--minutes", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--part-worker", choices=tuple(WORKER_PARTS), help=argparse.SUPPRESS)
    parser.add_argument("--peaks", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.data.is_file():
        parser.error(f"--data {args.data}: no such file")
    if args.part_worker:
        return part_worker(args)
    if args.quality_worker:
        quality_worker(args)
        return 0
    if args.nccl_worker:
        nccl_worker(args)
        return 0
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    if not torch.cuda.is_available() and not args.smoke:
        parser.error("no CUDA GPU is visible: this check measures a GPU; --smoke runs it in miniature on the CPU")
    sizes = SMOKE if args.smoke else FULL
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    check = Check(args.out, args.data.resolve(), sizes, args.smoke, args.budget or sizes.budget_s, device)
    check.injected = {p for p in args.inject_failure.split(",") if p}
    functions = {"env": in_worker("env"), "cuda_tests": part_cuda_tests, "train_speed": in_worker("train_speed"),
                 "sampling": in_worker("sampling"), "torchrun": part_torchrun, "quality": part_quality}
    check.log(f"genseq GPU check ({check.results['mode']}) on {device}, budget {check.remaining():.0f} s, "
              f"parts {', '.join(parts)}")
    try:
        for name in parts:
            check.run_part(name, functions[name])
    finally:
        summary(check)
        check.save()
        shutil.rmtree(check.scratch, ignore_errors=True)
    check.log(f"done in {time.monotonic() - check.started:.0f} s: {check.failures} part(s) failed; "
              f"results in {args.out / 'results.json'}")
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
