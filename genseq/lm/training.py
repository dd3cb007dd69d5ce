"""The training loop and its run folder: checkpoints, config, metrics, resume."""

from __future__ import annotations

import json
import math
import platform
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from genseq.errors import CheckpointError, GenseqError
from genseq.files import write_atomic
from genseq.limits import check_memory, training_bytes
from genseq.lm.checkpoint import load_checkpoint, save_checkpoint
from genseq.lm.config import ModelConfig, TrainConfig, from_dict, to_dict
from genseq.lm.data import StreamBatches, evaluation_windows
from genseq.lm.distributed import world
from genseq.lm.model import LSTMLanguageModel
from genseq.lm.planning import EVAL_SHARE, EVALUATIONS, WARMUP_MAX_STEPS, WARMUP_SHARE
from genseq.lm.runtime import (
    autocast,
    choose_device,
    choose_precision,
    heap_kept,
    restore_rng_state,
    rng_state,
    seed_everything,
    set_threads,
)

MAX_BAD_STEPS = 3


@dataclass
class Progress:
    """Where a run stands; saved in every checkpoint so a resumed run continues exactly."""

    step: int = 0
    epoch: int = 0
    window: int = 0
    tokens_seen: int = 0
    elapsed_seconds: float = 0.0
    best_val_loss: float = math.inf
    last_val_loss: float = math.inf
    lr_scale: float = 1.0
    bad_steps: int = 0
    evaluations: int = 0
    """Evaluations spaced over the budget so far (when --eval-every is not given)."""
    evaluations_since_best: int = 0
    """Evaluations in a row without a better validation loss (early stopping, `TrainConfig.patience`)."""


@dataclass
class RunResult:
    run_dir: Path
    progress: Progress
    stopped_by: str
    metrics: list[dict[str, Any]] = field(default_factory=list)


def versions() -> dict[str, str]:
    """What wrote a checkpoint (genseq's version from its installed metadata: the lm layer imports nothing above)."""
    return {"genseq": version("genseq"), "torch": str(torch.__version__), "python": platform.python_version()}


def learning_rate(config: TrainConfig, progress: Progress, fraction_done: float) -> float:
    """Linear warm-up, then cosine decay to `min_lr_ratio` over the budget.

    The warm-up lasts `warmup_steps` steps; when that is None, WARMUP_MAX_STEPS steps or WARMUP_SHARE
    of the budget, whichever ends first, so it is never a large share of a short run (for a time
    budget the share follows the clock, so it is re-estimated as the run goes).
    """
    if config.warmup_steps is None:
        warmup = min(1.0, max((progress.step + 1) / WARMUP_MAX_STEPS, fraction_done / WARMUP_SHARE))
    else:
        warmup = min(1.0, (progress.step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, fraction_done)))
    floor = config.min_lr_ratio
    return config.learning_rate * progress.lr_scale * warmup * (floor + (1 - floor) * cosine)


class StopRequest:
    """Turns SIGINT / SIGTERM into a flag read at the next step boundary, so a checkpoint is saved."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self.signal_number = 0
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.signal_name, self.signal_number = signal.Signals(signum).name, signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class Trainer:
    """Trains one model on a flat token array; everything about the source stays with the caller.

    `meta` (tokenizer, data description) is stored in every checkpoint unchanged, so the
    checkpoint alone rebuilds the model and its tokenizer.
    """

    def __init__(
        self,
        model_config: ModelConfig,
        config: TrainConfig,
        train_tokens: np.ndarray,
        val_tokens: np.ndarray,
        run_dir: Path,
        meta: dict[str, Any],
        resume_from: dict[str, Any] | None = None,
    ):
        self.config, self.run_dir, self.meta = config, Path(run_dir), meta
        self.world = world()
        set_threads(config.threads)
        self.device = choose_device(config.device)
        self.precision = choose_precision(config.precision, self.device)
        seed_everything(config.seed)
        shape = f"{model_config.num_layers}x{model_config.hidden_size}"
        check_memory(training_bytes(model_config.parameters(), config.batch_size, config.seq_len,
                                    model_config.hidden_size, model_config.num_layers, model_config.vocab_size),
                     f"training a {shape} model on batches of {config.batch_size}x{config.seq_len}",
                     "choose a smaller --hidden, --layers or --batch-size", self.device)
        self.model = LSTMLanguageModel(model_config).to(self.device)
        self.network = (torch.nn.parallel.DistributedDataParallel(self.model) if self.world.active
                        else self.model)  # what trains: gradients are averaged over processes
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.learning_rate, betas=(0.9, 0.99), weight_decay=config.weight_decay
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.batches = StreamBatches(train_tokens, config.batch_size, config.seq_len, seed=config.seed,
                                     rank=self.world.rank, world_size=self.world.size)
        self.val_windows = evaluation_windows(val_tokens, config.batch_size, config.seq_len, config.eval_tokens)
        self.progress = Progress()
        self.eval_seconds: float | None = None
        """How long the last evaluation took: a time budget evaluates less often where it is long."""
        self.state = self.model.init_state(self.batches.batch_size)
        if resume_from is not None:
            self._restore(resume_from)

    # -- checkpoints --------------------------------------------------------------------------

    def _payload(self) -> dict[str, Any]:
        return {
            "model_config": to_dict(self.model.config),
            "train_config": to_dict(self.config),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),  # fp16's loss scale ({} otherwise): a resumed run keeps it
            "progress": asdict(self.progress),
            "hidden": [torch.cat(self.world.gather(t.detach()), dim=1).cpu() for t in self.state],
            "rng": rng_state(),
            "rank_rng": [t.cpu() for t in self.world.gather(torch.get_rng_state().to(self._sync_device))],
            "versions": versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **self.meta,
        }

    def _restore(self, payload: dict[str, Any]) -> None:
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        if payload.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(payload["scaler"])
        self.progress = from_dict(Progress, payload["progress"])
        share = slice(self.world.rank * self.batches.batch_size, (self.world.rank + 1) * self.batches.batch_size)
        # fp32 whatever the run's precision: a bf16 run's state fed to an fp32 LSTM (resumed where bf16 is not
        # native, e.g. a GPU run on a CPU) fails; under autocast it is cast back to the same bf16 values
        self.state = tuple(t[:, share].to(self.device, torch.float32) for t in payload["hidden"])
        restore_rng_state(payload["rng"])
        if len(payload.get("rank_rng", [])) == self.world.size > 1:  # each process's own dropout stream
            torch.set_rng_state(payload["rank_rng"][self.world.rank])

    @property
    def _sync_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")

    def save(self, name: str) -> None:
        """Every process takes part (hidden states and RNG are gathered); only the first one writes."""
        payload = self._payload()
        if self.world.is_main:
            save_checkpoint(self.run_dir / name, payload)
        self.world.barrier()

    # -- the loop -----------------------------------------------------------------------------

    def fraction_done(self) -> float:
        """How much of the budget is spent, 0..1: the first budget to run out ends the run."""
        c, p = self.config, self.progress
        parts = []
        if c.steps:
            parts.append(p.step / c.steps)
        if c.epochs:
            parts.append((p.epoch + p.window / self.batches.windows_per_epoch) / c.epochs)
        if c.minutes:
            parts.append(p.elapsed_seconds / (60 * c.minutes))
        return max(parts)

    def train_step(self) -> float:
        """One window: forward, backward, clip, update. Returns the loss (nan when the step was refused)."""
        p = self.progress
        inputs, targets = (t.to(self.device) for t in self.batches.window(p.epoch, p.window))
        lr = learning_rate(self.config, p, self.fraction_done())
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.network.train()
        with autocast(self.device, self.precision):
            logits, state = self.network(inputs, self.state)
            loss = nn.functional.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        if not (torch.isfinite(loss) and torch.isfinite(norm)) and not self.scaler.is_enabled():
            return self._refuse_step(loss.item())
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.state = tuple(t.detach() for t in state)
        p.bad_steps = 0
        self._advance(inputs.numel() * self.world.size)
        return self.world.sum(loss.item())[0] / self.world.size

    def _refuse_step(self, loss: float) -> float:
        """A non-finite loss or gradient: skip the update, lower the rate, start the state afresh.

        The weights stay as they were unless they are themselves non-finite (an earlier update
        overflowed), in which case the weights and optimizer of the last checkpoint come back.
        """
        p = self.progress
        p.bad_steps += 1
        p.lr_scale *= 0.5
        self.optimizer.zero_grad(set_to_none=True)
        self.state = self.model.init_state(self.batches.batch_size)
        restored = None if self.weights_are_finite() else self._restore_weights(self.run_dir / "last.pt")
        self._advance(0)
        self._log({"step": p.step, "event": "non-finite loss", "loss": str(loss), "lr_scale": p.lr_scale,
                   "restored": restored})
        return math.nan

    def weights_are_finite(self) -> bool:
        return all(bool(torch.isfinite(t).all()) for t in self.model.parameters())

    def _restore_weights(self, path: Path) -> str | None:
        """Weights and optimizer state of the checkpoint at `path` (progress is kept); its path, or None if absent."""
        if not path.exists():
            return None
        payload = load_checkpoint(path)
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        return str(path)

    def _advance(self, tokens: int) -> None:
        p = self.progress
        p.step += 1
        p.tokens_seen += tokens
        p.window += 1
        if p.window >= self.batches.windows_per_epoch:
            p.epoch, p.window = p.epoch + 1, 0
            self.state = self.model.init_state(self.batches.batch_size)

    @torch.no_grad()
    def evaluate(self) -> float:
        """Mean cross-entropy (nats per token) over the held-out windows, state carried between them.

        Each process reads its own share of the held-out streams; the sums are added over processes.
        """
        self.model.eval()
        total, count = 0.0, 0
        state = None
        for window in self.val_windows:
            window = torch.tensor_split(window, self.world.size)[self.world.rank].to(self.device)
            if not len(window):
                continue
            with autocast(self.device, self.precision):
                logits, state = self.model(window[:, :-1], state)
            loss = nn.functional.cross_entropy(logits.float().flatten(0, 1), window[:, 1:].flatten(), reduction="sum")
            total += loss.item()
            count += window[:, 1:].numel()
        total, count = self.world.sum(total, count)
        return total / count

    def _log(self, record: dict[str, Any]) -> None:
        if not self.world.is_main:
            return
        path = self.run_dir / "metrics.jsonl"
        record = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()}
        line = json.dumps(record, allow_nan=False) + "\n"  # strict JSON: a diverged loss is null
        # the file is rewritten whole (a few hundred lines at most), so a full disk cannot leave half a line
        write_atomic(path, (path.read_bytes() if path.exists() else b"") + line.encode("utf-8"))

    def run(self, on_step: Callable[[Trainer, float], None] | None = None,
            on_eval: Callable[[Trainer, dict], None] | None = None) -> RunResult:
        """Train until the budget is spent or a stop is requested; evaluate and checkpoint every `eval_every` steps."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        _truncate_metrics(self.run_dir / "metrics.jsonl", self.progress.step)
        p = self.progress
        window_losses: list[float] = []
        started, window_started, tokens_at_start = time.perf_counter(), time.perf_counter(), p.tokens_seen
        elapsed_at_start = p.elapsed_seconds
        stopped_by, saved_at = "budget", p.step
        with StopRequest() as stop, heap_kept():
            while self.fraction_done() < 1:
                loss = self.train_step()
                # processes must agree on the budget and on a stop, or one would wait for the others forever
                p.elapsed_seconds = self.world.max(elapsed_at_start + time.perf_counter() - started)
                if not math.isnan(loss):
                    window_losses.append(loss)
                if on_step:
                    on_step(self, loss)
                if p.bad_steps >= MAX_BAD_STEPS:
                    stopped_by = "non-finite loss"
                    break
                if self._evaluation_due():
                    record = self._evaluate_and_save(window_losses, tokens_at_start, window_started)
                    saved_at = p.step
                    window_losses, window_started, tokens_at_start = [], time.perf_counter(), p.tokens_seen
                    if on_eval:
                        on_eval(self, record)
                    if self.config.patience and p.evaluations_since_best >= self.config.patience:
                        stopped_by = "no improvement"
                        break
                if self.world.max(stop.signal_number):
                    stopped_by = stop.signal_name or "SIGTERM"
                    break
            finite = self.weights_are_finite()  # a checkpoint never holds non-finite weights
            if finite and p.step != saved_at:  # a stop right after a checkpoint must not log the step twice
                record = self._evaluate_and_save(window_losses, tokens_at_start, window_started)
                if on_eval:
                    on_eval(self, record)
        if stopped_by == "non-finite loss":
            saved = (f"the last good weights are in {self.run_dir / 'last.pt'}; resume with `genseq train --resume "
                     f"{self.run_dir}` (at {p.lr_scale:g} of the learning rate) or start again with a lower --lr"
                     if finite or (self.run_dir / "last.pt").exists() else
                     "no checkpoint was written; start again with a lower --lr")
            raise GenseqError(f"training stopped: {MAX_BAD_STEPS} non-finite losses in a row at step {p.step}; {saved}")
        return RunResult(self.run_dir, p, stopped_by, read_metrics(self.run_dir))

    def _evaluation_due(self) -> bool:
        """Every `eval_every` steps; when that is None, EVALUATIONS times evenly over the budget, fewer in a time
        budget where they would take more than EVAL_SHARE of it (the minutes are for training)."""
        p, c = self.progress, self.config
        if c.eval_every is not None:
            return p.step % c.eval_every == 0
        planned = EVALUATIONS
        if c.minutes and self.eval_seconds:
            planned = max(2, min(EVALUATIONS, int(EVAL_SHARE * 60 * c.minutes / self.eval_seconds)))  # first, last
        reached = int(min(1.0, self.fraction_done()) * planned)
        if reached > p.evaluations:
            p.evaluations = reached
            return True
        return False

    def _evaluate_and_save(self, window_losses: list[float], tokens_at_start: int, window_started: float) -> dict:
        p = self.progress
        evaluating = time.perf_counter()
        p.last_val_loss = self.evaluate()
        self.eval_seconds = self.world.max(time.perf_counter() - evaluating)  # every process plans the same evaluations
        seconds = max(time.perf_counter() - window_started, 1e-9)
        record = {
            "step": p.step,
            "tokens": p.tokens_seen,
            "train_loss": float(np.mean(window_losses)) if window_losses else None,
            "val_loss": p.last_val_loss,
            "lr": self.optimizer.param_groups[0]["lr"],
            "tokens_per_s": (p.tokens_seen - tokens_at_start) / seconds,
            "elapsed": p.elapsed_seconds,
        }
        self._log(record)
        improved = p.last_val_loss < p.best_val_loss
        if improved:
            p.best_val_loss = p.last_val_loss
        p.evaluations_since_best = 0 if improved else p.evaluations_since_best + 1
        self.save("last.pt")
        if improved:
            self.save("best.pt")
        return record


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop metric lines past `step`: they came from after the checkpoint a run resumes from."""
    if not path.exists():
        return
    lines = path.read_bytes().splitlines(keepends=True)
    kept = [line for line in lines if line.strip() and _line_step(line) <= step]
    if len(kept) != len(lines):  # replaced whole, so a kill now cannot lose the lines before `step`
        write_atomic(path, b"".join(kept))


def _line_step(line: bytes) -> int:
    try:
        return int(json.loads(line.decode("utf-8"))["step"])
    except (ValueError, KeyError, TypeError):
        return 1 << 62  # a torn last line from a killed run, or bytes genseq did not write: dropped


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    records = []
    for line in path.read_bytes().splitlines():
        try:
            record = json.loads(line.decode("utf-8"))
        except ValueError:  # a torn line, or bytes that are not UTF-8 JSON: not genseq's
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def resume_payload(run_dir: Path) -> dict[str, Any]:
    """The newest complete checkpoint of a run folder; half-written files of a killed run are removed."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir}: no such run folder; give --resume the folder a run wrote")
    if not (run_dir / "last.pt").is_file():
        raise CheckpointError(
            f"{run_dir} holds no last.pt to resume from (a run killed before its first checkpoint); "
            "start it again without --resume"
        )
    for stale in run_dir.glob(".*.tmp"):
        stale.unlink(missing_ok=True)
    payload = load_checkpoint(run_dir / "last.pt")
    for key, kind in RESUMED.items():
        if not isinstance(payload.get(key), kind):
            raise CheckpointError(f"{run_dir / 'last.pt'} cannot resume a run: it lacks the training state "
                                  f"{key!r} (an exported checkpoint?); start a new run instead")
    return payload


RESUMED = {"optimizer": dict, "progress": dict, "train_config": dict, "hidden": (list, tuple), "rng": dict}
"""What a checkpoint must hold, beyond `checkpoint.REQUIRED`, for a Trainer to resume from it (`genseq train
--resume` also needs the data and tokenizer its run was given: `api.train` checks those)."""
