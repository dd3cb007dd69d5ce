"""What every benchmark shares: the plain PyTorch loop genseq is compared with, its data, the timers, the FLOPs of
a training character and the machine's matrix-multiply peak, and the plain and genseq sampling loops.

The plain loop: embedding -> nn.LSTM(2 layers, 512) -> linear, Adam 2e-3, cross-entropy, clip 5, fp32, batch 64,
100-step windows, dropout 0.2, hidden state carried between windows. `tuned=True` is the same loop under bf16
autocast with AdamW, warm-up, cosine decay over the budget and dropout 0.3. On a GPU it is cuDNN's nn.LSTM, with
the data on the device.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

SHAKESPEARE = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"
CPU = torch.device("cpu")
PLAIN_LR, PLAIN_CLIP, PLAIN_DROPOUT = 2e-3, 5.0, 0.2

# -- data -----------------------------------------------------------------------------------------


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=SHAKESPEARE,
                        help="UTF-8 text to train on (default: ../shared/data/tinyshakespeare.txt beside the checkout)")


def data_file(path: Path) -> Path:
    """`path`, or a one-line exit that names it and says what to pass."""
    if not Path(path).is_file():
        raise SystemExit(f"benchmark data {path} not found; pass --data FILE (a UTF-8 text such as "
                         "tinyshakespeare.txt, https://github.com/karpathy/char-rnn/tree/master/data/tinyshakespeare)")
    return Path(path)


def load_text(path: Path = SHAKESPEARE, val_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray, int]:
    """(train ids, validation ids, vocabulary size) of a text read as characters, its last tenth held out."""
    text = data_file(path).read_text(encoding="utf-8")
    chars = sorted(set(text))
    ids = np.array([chars.index(c) for c in chars], dtype=np.int64)[np.searchsorted(chars, list(text))]
    cut = int(len(ids) * (1 - val_fraction))
    return ids[:cut], ids[cut:], len(chars)


def streams(ids: np.ndarray, batch: int) -> torch.Tensor:
    """`ids` cut into `batch` parallel streams, one a row."""
    n = len(ids) // batch
    return torch.from_numpy(ids[: n * batch].astype(np.int64).reshape(batch, n))


# -- the plain loop -------------------------------------------------------------------------------


class PlainLSTM(nn.Module):
    def __init__(self, vocab: int, hidden: int = 512, layers: int = 2, dropout: float = PLAIN_DROPOUT):
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.drop = nn.Dropout(dropout)
        self.lstm = nn.LSTM(hidden, hidden, layers, dropout=dropout, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x, state=None):
        out, state = self.lstm(self.drop(self.embed(x)), state)
        return self.head(self.drop(out)), state


@torch.no_grad()
def evaluate(model: nn.Module, val: np.ndarray, seq_len: int = 100, batch: int = 64, autocast=None,
             device: torch.device = CPU) -> float:
    """Mean nats/char of `model` (plain or genseq's: both return logits and state) over all of `val`, state
    carried."""
    model.eval()
    data, state, total, count = streams(val, batch).to(device), None, 0.0, 0
    for i in range(0, data.shape[1] - 1, seq_len):
        window = data[:, i : i + seq_len + 1]
        with autocast or contextlib.nullcontext():
            logits, state = model(window[:, :-1], state)
        targets = window[:, 1:].flatten()
        total += nn.functional.cross_entropy(logits.float().flatten(0, 1), targets, reduction="sum").item()
        count += window[:, 1:].numel()
    return total / count


class PlainRun:
    """The plain loop on any device, one `step` at a time: nn.LSTM, Adam (AdamW with weight decay 0.01 when
    `tuned`), clip 5, the state carried between windows; `amp` runs the forward pass in that autocast dtype."""

    def __init__(self, train_ids: np.ndarray, vocab: int, device: torch.device = CPU, layers: int = 2,
                 hidden: int = 512, batch: int = 64, seq_len: int = 100, amp: torch.dtype | None = None,
                 dropout: float = PLAIN_DROPOUT, tuned: bool = False, seed: int = 0):
        torch.manual_seed(seed)
        self.device, self.seq_len, self.amp = device, seq_len, amp
        self.model = PlainLSTM(vocab, hidden, layers, dropout=dropout).to(device)
        self.optimizer = (torch.optim.AdamW(self.model.parameters(), lr=PLAIN_LR, weight_decay=0.01) if tuned
                          else torch.optim.Adam(self.model.parameters(), lr=PLAIN_LR))
        self.data = streams(train_ids, batch).to(device)
        self.position, self.state = 0, None
        self.chars_per_step = batch * seq_len

    def autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(self.device.type, dtype=self.amp) if self.amp else contextlib.nullcontext()

    def step(self) -> torch.Tensor:
        """One training step; the loss as a tensor on the device (reading it is the caller's synchronisation)."""
        if self.position + self.seq_len + 1 > self.data.shape[1]:
            self.position, self.state = 0, None
        window = self.data[:, self.position : self.position + self.seq_len + 1]
        self.model.train()
        with self.autocast():
            logits, state = self.model(window[:, :-1], self.state)
            loss = nn.functional.cross_entropy(logits.float().flatten(0, 1), window[:, 1:].flatten())
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), PLAIN_CLIP)
        self.optimizer.step()
        self.state = tuple(s.detach() for s in state)
        self.position += self.seq_len
        return loss.detach()

    def evaluate(self, val_ids: np.ndarray, batch: int = 64, seq_len: int = 100) -> float:
        """Mean nats/char over all of `val_ids`, state carried, in the run's autocast."""
        return evaluate(self.model, val_ids, seq_len, batch, self.autocast() if self.amp else None, self.device)


def train(minutes: float | None = None, tuned: bool = False, steps: int | None = None, seed: int = 0,
          data: tuple[np.ndarray, np.ndarray, int] | None = None, hidden: int = 512, layers: int = 2,
          seq_len: int = 100, batch: int = 64, dropout: float | None = None) -> dict:
    """Train the plain loop for `minutes` or `steps` on `data` (train ids, validation ids, vocabulary size;
    default tinyshakespeare); returns steps, chars/s and the validation loss of the last weights."""
    train_ids, val_ids, vocab = data if data is not None else load_text()
    run = PlainRun(train_ids, vocab, CPU, layers, hidden, batch, seq_len, amp=torch.bfloat16 if tuned else None,
                   dropout=(0.3 if tuned else PLAIN_DROPOUT) if dropout is None else dropout, tuned=tuned, seed=seed)
    budget, started, step = (minutes or 0) * 60, time.perf_counter(), 0
    while (steps is None and time.perf_counter() - started < budget) or (steps is not None and step < steps):
        if tuned:  # warm-up over 100 steps, then cosine decay to 5% over the budget
            done = (time.perf_counter() - started) / budget if steps is None else step / steps
            warm = min(1.0, (step + 1) / 100)
            for group in run.optimizer.param_groups:
                group["lr"] = PLAIN_LR * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(done, 1.0))))
        run.step()
        step += 1
    seconds = time.perf_counter() - started
    return {"steps": step, "chars_per_s": step * run.chars_per_step / seconds, "val_loss": run.evaluate(val_ids),
            "seconds": seconds, "shape": f"{layers}x{hidden}, windows of {seq_len}, batch {batch}"}


# -- timers, FLOPs and peaks ----------------------------------------------------------------------


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that a clock read after it counts that work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def mean_seconds(step: Callable[[], Any], warmup: int, steps: int, device: torch.device = CPU) -> tuple[float, Any]:
    """Mean seconds per call of `step` over `steps` after `warmup` (the device synchronized at both ends, so a
    GPU's queue is not drained between steps), and the last call's result."""
    for _ in range(warmup):
        step()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        result = step()
    synchronize(device)
    return (time.perf_counter() - started) / steps, result


def fastest_seconds(step: Callable[[], Any], warmup: int, steps: int) -> float:
    """Seconds per call of `step` after `warmup` untimed calls: the fastest of `steps` timed calls, which is the
    figure least disturbed by other processes on a shared CPU (`step` reads its result: nothing is left queued)."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return min(times)


def flops_per_char(vocab: int, hidden: int = 512, layers: int = 2) -> float:
    """Matrix-multiply FLOPs per training character: forward 2 per weight, backward 4 per weight."""
    weights = layers * 4 * hidden * 2 * hidden + hidden * vocab
    return 6.0 * weights


def matmul_peak(dtype: torch.dtype, device: torch.device = CPU, size: int = 2048, seconds: float = 2.0) -> float:
    """FLOP/s of a square matrix product in `dtype` on `device`: the best of the products timed for `seconds`
    after an untimed one (each synchronized on a GPU), under PyTorch's TF32 settings as they stand.

    On a CPU two libraries are timed and the faster counts: `torch.mm` (MKL for fp32, which takes its AVX2 path
    on AMD CPUs: about half of what the chip does) and oneDNN's linear (what nn.LSTM uses).
    """
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    out = torch.empty(size, size, dtype=dtype, device=device)
    products = [lambda: torch.mm(a, b, out=out)]
    if device.type == "cpu" and torch.backends.mkldnn.is_available() and dtype == torch.float32:
        a_dnn, b_dnn = a.to_mkldnn(), b.t().contiguous().to_mkldnn()  # first: MKL's threads linger after it
        products.insert(0, lambda: torch.ops.aten.mkldnn_linear(a_dnn, b_dnn, None))
    best = 0.0
    for product in products:
        product()
        synchronize(device)
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            t = time.perf_counter()
            product()
            synchronize(device)
            best = max(best, 2 * size**3 / (time.perf_counter() - t))
    return best


# -- sampling -------------------------------------------------------------------------------------


@torch.inference_mode()
def plain_carried(model: nn.Module, batch: int, length: int, device: torch.device = CPU) -> float:
    """chars/s of the textbook loop on the device: step nn.LSTM with the state carried, softmax, multinomial;
    nothing comes back to the host until the end."""
    generator = torch.Generator(device=device).manual_seed(0)
    token, state, drawn = torch.zeros(batch, 1, dtype=torch.long, device=device), None, []
    synchronize(device)
    started = time.perf_counter()
    for _ in range(length):
        logits, state = model(token, state)
        token = torch.multinomial(torch.softmax(logits[:, -1], -1), 1, generator=generator)
        drawn.append(token)
    torch.cat(drawn, 1).cpu()
    return batch * length / (time.perf_counter() - started)


def genseq_generate(model: nn.Module, batch: int, length: int, precision: str = "auto",
                    fast: bool | None = None) -> float:
    """chars/s of genseq's `generate` (`fast`: its CPU fast path or not; None: its own choice)."""
    from genseq.lm.config import SampleConfig
    from genseq.lm.sampling import generate

    config = SampleConfig(length=length, num_samples=batch, seed=0, stop_at_end=False, precision=precision)
    started = time.perf_counter()
    generate(model, [1, 2, 3], config, end_token=0, fast=fast)
    return batch * length / (time.perf_counter() - started)
