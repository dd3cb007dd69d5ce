"""The plain PyTorch baseline every genseq figure is compared with.

embedding -> nn.LSTM(2 layers, 512) -> linear, Adam 2e-3, cross-entropy, clip 5, fp32, batch 64,
100-step windows, dropout 0.2, hidden state carried between windows. `tuned=True` is the same loop
under bf16 autocast with AdamW, warm-up, cosine decay over the budget and dropout 0.3.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

SHAKESPEARE = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=SHAKESPEARE,
                        help="UTF-8 text to train on (default: ../shared/data/tinyshakespeare.txt beside the checkout)")


def data_file(path: Path) -> Path:
    """`path`, or a one-line exit that names it and says what to pass."""
    if not Path(path).is_file():
        raise SystemExit(f"benchmark data {path} not found; pass --data FILE (a UTF-8 text such as "
                         "tinyshakespeare.txt, https://github.com/karpathy/char-rnn/tree/master/data/tinyshakespeare)")
    return Path(path)


class PlainLSTM(nn.Module):
    def __init__(self, vocab: int, hidden: int = 512, layers: int = 2, dropout: float = 0.2):
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.drop = nn.Dropout(dropout)
        self.lstm = nn.LSTM(hidden, hidden, layers, dropout=dropout, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x, state=None):
        out, state = self.lstm(self.drop(self.embed(x)), state)
        return self.head(self.drop(out)), state


def load_text(path: Path = SHAKESPEARE, val_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray, int]:
    text = data_file(path).read_text(encoding="utf-8")
    chars = sorted(set(text))
    ids = np.array([chars.index(c) for c in chars], dtype=np.int64)[np.searchsorted(chars, list(text))]
    cut = int(len(ids) * (1 - val_fraction))
    return ids[:cut], ids[cut:], len(chars)


def streams(ids: np.ndarray, batch: int) -> torch.Tensor:
    n = len(ids) // batch
    return torch.from_numpy(ids[: n * batch].astype(np.int64).reshape(batch, n))


@torch.no_grad()
def evaluate(model: PlainLSTM, val: np.ndarray, seq_len: int = 100, batch: int = 64, autocast=None) -> float:
    model.eval()
    data, state, total, count = streams(val, batch), None, 0.0, 0
    for i in range(0, data.shape[1] - 1, seq_len):
        window = data[:, i : i + seq_len + 1]
        with autocast or contextlib.nullcontext():
            logits, state = model(window[:, :-1], state)
        targets = window[:, 1:].flatten()
        total += nn.functional.cross_entropy(logits.float().flatten(0, 1), targets, reduction="sum").item()
        count += window[:, 1:].numel()
    return total / count


def train(minutes: float | None = None, tuned: bool = False, steps: int | None = None, seed: int = 0,
          data: tuple[np.ndarray, np.ndarray, int] | None = None, hidden: int = 512, layers: int = 2,
          seq_len: int = 100, batch: int = 64, dropout: float | None = None) -> dict:
    """Train the plain loop for `minutes` or `steps` on `data` (train ids, validation ids, vocabulary size;
    default tinyshakespeare); returns steps, chars/s and the validation loss of the last weights."""
    torch.manual_seed(seed)
    train_ids, val_ids, vocab = data if data is not None else load_text()
    model = PlainLSTM(vocab, hidden, layers, dropout=(0.3 if tuned else 0.2) if dropout is None else dropout)
    lr = 2e-3
    optimizer = (torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01) if tuned
                 else torch.optim.Adam(model.parameters(), lr=lr))
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if tuned else contextlib.nullcontext
    data_streams, state = streams(train_ids, batch), None
    budget, started, step, position, chars = (minutes or 0) * 60, time.perf_counter(), 0, 0, 0
    while (steps is None and time.perf_counter() - started < budget) or (steps is not None and step < steps):
        if tuned:
            done = (time.perf_counter() - started) / budget if steps is None else step / steps
            warm = min(1.0, (step + 1) / 100)
            for group in optimizer.param_groups:
                group["lr"] = lr * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(done, 1.0))))
        if position + seq_len + 1 > data_streams.shape[1]:
            position, state = 0, None
        window = data_streams[:, position : position + seq_len + 1]
        model.train()
        with autocast():
            logits, state = model(window[:, :-1], state)
            loss = nn.functional.cross_entropy(logits.float().flatten(0, 1), window[:, 1:].flatten())
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        state = tuple(s.detach() for s in state)
        position += seq_len
        step += 1
        chars += window[:, :-1].numel()
    seconds = time.perf_counter() - started
    val = evaluate(model, val_ids, autocast=autocast() if tuned else None)
    return {"steps": step, "chars_per_s": chars / seconds, "val_loss": val, "seconds": seconds,
            "shape": f"{layers}x{hidden}, windows of {seq_len}, batch {batch}"}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--tuned", action="store_true")
    add_data_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(train(args.minutes, tuned=args.tuned, data=load_text(args.data)))
