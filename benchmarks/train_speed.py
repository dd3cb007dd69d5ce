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
import json
import tempfile
import time

import numpy as np
import torch

from benchmarks.common import PlainRun, add_data_argument, fastest_seconds, flops_per_char, load_text, matmul_peak
from genseq.lm.config import ModelConfig, TrainConfig
from genseq.lm.probe import machine_name
from genseq.lm.runtime import cpu_supports_bf16, heap_kept
from genseq.lm.training import Trainer

BATCH, SEQ_LEN, HIDDEN, LAYERS = 64, 100, 512, 2


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

    def plain(amp: torch.dtype | None) -> float:
        """Seconds per step of the plain loop, its loss read after each step."""
        run = PlainRun(train_ids, vocab, amp=amp)
        return fastest_seconds(lambda: run.step().item(), warmup, steps)

    record("plain fp32", plain(None), "fp32")
    if bf16:
        record("plain bf16 autocast", plain(torch.bfloat16), "bf16")
    with heap_kept():  # how much of genseq's gain is the allocator setting alone
        record("plain fp32, heap kept", plain(None), "fp32")
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
