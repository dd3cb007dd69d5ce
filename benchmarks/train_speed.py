"""Training throughput: the plain PyTorch loop against genseq's Trainer, same shape, one run.

    python -m benchmarks.train_speed            # about 3 minutes on 2 cores
    python -m benchmarks.train_speed --quick    # smoke version

Shape: vocab 65 (tinyshakespeare), embedding 512, 2-layer LSTM 512, batch 64, 100-step windows.
Prints chars/s of each loop, genseq's ratio to the plain fp32 loop, and the fraction of this
machine's matrix-multiply peak (a large square matmul timed here, fp32 and bf16) each reaches.
genseq is timed through `Trainer.run`, as `genseq train` runs it (with `runtime.heap_kept`); the
plain loop once as written and once inside `heap_kept`, to show what the allocator setting alone gives.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time

import numpy as np
import torch
from torch import nn

from benchmarks.plain_loop import PlainLSTM, add_data_argument, load_text, streams
from genseq.lm.config import ModelConfig, TrainConfig
from genseq.lm.probe import machine_name
from genseq.lm.runtime import cpu_supports_bf16, heap_kept
from genseq.lm.training import Trainer

BATCH, SEQ_LEN, HIDDEN, LAYERS = 64, 100, 512, 2


def flops_per_char(vocab: int, hidden: int = HIDDEN, layers: int = LAYERS) -> float:
    """Matrix-multiply FLOPs per training character: forward 2 per weight, backward 4 per weight."""
    weights = layers * 4 * hidden * 2 * hidden + hidden * vocab
    return 6.0 * weights


def matmul_peak(dtype: torch.dtype, size: int = 2048, seconds: float = 2.0) -> float:
    """FLOP/s of a large square matmul in `dtype` on this machine (the best of several timed runs).

    Two libraries are timed and the faster counts: `torch.mm` (MKL for fp32, which takes its AVX2
    path on AMD CPUs: about half of what the chip does) and oneDNN's linear (what nn.LSTM uses).
    """
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    out = torch.empty(size, size, dtype=dtype)
    products = [lambda: torch.mm(a, b, out=out)]
    if torch.backends.mkldnn.is_available() and dtype == torch.float32:  # first: MKL's threads linger after it
        a_dnn, b_dnn = a.to_mkldnn(), b.t().contiguous().to_mkldnn()
        products.insert(0, lambda: torch.ops.aten.mkldnn_linear(a_dnn, b_dnn, None))
    best = 0.0
    for product in products:
        product()
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            t = time.perf_counter()
            product()
            best = max(best, 2 * size**3 / (time.perf_counter() - t))
    return best


def time_steps(step, warmup: int, steps: int) -> float:
    """Seconds per call of `step` after `warmup` untimed calls: the fastest of `steps` timed calls, which
    is the figure least disturbed by other processes on a shared machine."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return min(times)


def plain_step_fn(train_ids: np.ndarray, vocab: int, bf16: bool):
    """One step of the plain loop of benchmarks/plain_loop.py (Adam, clip 5, state carried)."""
    torch.manual_seed(0)
    model = PlainLSTM(vocab)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    data, box = streams(train_ids, BATCH), {"position": 0, "state": None}
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext

    def step() -> None:
        position = box["position"]
        if position + SEQ_LEN + 1 > data.shape[1]:
            position, box["state"] = 0, None
        window = data[:, position : position + SEQ_LEN + 1]
        model.train()
        with autocast():
            logits, state = model(window[:, :-1], box["state"])
            loss = nn.functional.cross_entropy(logits.float().flatten(0, 1), window[:, 1:].flatten())
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        loss.item()
        box["state"], box["position"] = tuple(s.detach() for s in state), position + SEQ_LEN

    return step


def genseq_seconds(train_ids: np.ndarray, val_ids: np.ndarray, vocab: int, precision: str, warmup: int,
                   steps: int) -> float:
    """Seconds per step of `Trainer.run` (what `genseq train` runs), the fastest of `steps` after `warmup`."""
    model_config = ModelConfig(vocab_size=vocab, hidden_size=HIDDEN, num_layers=LAYERS, dropout=0.2)
    config = TrainConfig(seq_len=SEQ_LEN, batch_size=BATCH, steps=warmup + steps, precision=precision, threads=2,
                         eval_tokens=10_000, eval_every=10**6)
    times = [time.perf_counter()]
    with tempfile.TemporaryDirectory() as folder:
        trainer = Trainer(model_config, config, train_ids.astype(np.int32), val_ids.astype(np.int32), folder, {})
        trainer.run(on_step=lambda trainer, loss: times.append(time.perf_counter()))
    return min(np.diff(times[warmup:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few steps each: a smoke test, not a figure")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per loop (fastest step counts)")
    add_data_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(2)
    warmup, steps = (1, 2) if args.quick else (3, args.steps)
    train_ids, val_ids, vocab = load_text(args.data)
    bf16 = cpu_supports_bf16()
    print(f"{machine_name()}: " + ("native bf16, bf16 rows run" if bf16 else
                                   "no native bf16 (AVX512-BF16 or AMX): bf16 rows skipped, fp32 is the fast path"))
    precisions = ("fp32", "bf16") if bf16 else ("fp32",)
    peak = {p: matmul_peak(torch.float32 if p == "fp32" else torch.bfloat16, seconds=0.3 if args.quick else 2.0)
            for p in precisions}
    rows = {}

    def record(name: str, seconds: float, precision: str) -> None:
        rate = BATCH * SEQ_LEN / seconds
        rows[name] = {"chars_per_s": rate, "precision": precision,
                      "peak_fraction": rate * flops_per_char(vocab) / peak[precision]}
        print(json.dumps({name: rows[name]}), flush=True)

    record("plain fp32", time_steps(plain_step_fn(train_ids, vocab, False), warmup, steps), "fp32")
    if bf16:
        record("plain bf16 autocast", time_steps(plain_step_fn(train_ids, vocab, True), warmup, steps), "bf16")
    with heap_kept():  # how much of genseq's gain is the allocator setting alone
        record("plain fp32, heap kept", time_steps(plain_step_fn(train_ids, vocab, False), warmup, steps), "fp32")
    for precision in precisions:
        record(f"genseq Trainer {precision}", genseq_seconds(train_ids, val_ids, vocab, precision, warmup, steps),
               precision)
    base = rows["plain fp32"]["chars_per_s"]
    peaks = ", ".join(f"{p} {value / 1e9:,.0f} GFLOP/s" for p, value in peak.items())
    print(f"\nmatmul peak: {peaks}; {flops_per_char(vocab) / 1e6:.1f} MFLOP per training char")
    print(f"{'':24} {'chars/s':>10} {'x plain fp32':>13} {'of peak':>8}")
    for name, row in rows.items():
        print(f"{name:24} {row['chars_per_s']:10,.0f} {row['chars_per_s'] / base:13.2f} "
              f"{row['peak_fraction']:8.1%} ({row['precision']} peak)")


if __name__ == "__main__":
    main()
