"""Sampling speed: a plain nn.LSTM sampling loop against genseq's `generate`, one run.

    python -m benchmarks.sample_speed            # 5 interleaved rounds, a few minutes on 2 cores
    python -m benchmarks.sample_speed --quick    # smoke version

Model: vocab 65, 2-layer LSTM 512 (random weights: speed does not depend on them). Plain loops:
the state carried through nn.LSTM one token at a time, and the whole sequence re-fed every step.
genseq: `generate` on the CPU fast path (fastpath.LSTMStep + TokenSelector, precision `auto`)
and on the plain path (model.step + next_token_probs), for one sample and for 64 at once; and
the bare fast step in fp32, bf16 and int8 (what decides `auto`). A sample is 1,000 characters,
`genseq sample`'s default length, so setting up (copying the weights, reading the primer) weighs
on `generate` as much as it does for a user.

The plain nn.LSTM step allocates multi-MB buffers. In a fresh process glibc serves each by a
new mmap whose pages fault in at every step (the issue's ~5 ms a step); once any larger block
has been freed, glibc's threshold rises and the same loop runs ~5x faster. The ratios use the
loop at its best, inside this process after warm-up; the fresh-process figure is printed too.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import torch

from benchmarks.common import PlainLSTM, genseq_generate, plain_carried
from genseq.lm.config import STEP_PRECISIONS, ModelConfig
from genseq.lm.fastpath import LSTMStep, TokenSelector, int8_kernel, native_step_precisions
from genseq.lm.model import LSTMLanguageModel
from genseq.lm.probe import machine_name
from genseq.lm.runtime import cpu_supports_bf16
from genseq.lm.sampling import step_precision

VOCAB, HIDDEN, LAYERS = 65, 512, 2


@torch.inference_mode()
def plain_refeed(model: PlainLSTM, length: int) -> float:
    """chars/s when the whole sequence so far is fed again for every new token (no state kept)."""
    generator = torch.Generator().manual_seed(0)
    sequence = torch.zeros(1, 1, dtype=torch.long)
    started = time.perf_counter()
    for _ in range(length):
        logits, _ = model(sequence)
        token = torch.multinomial(torch.softmax(logits[:, -1], -1), 1, generator=generator)
        sequence = torch.cat([sequence, token], 1)
    return length / (time.perf_counter() - started)


@torch.inference_mode()
def bare_fast_step(model: LSTMLanguageModel, batch: int, length: int, precision: str) -> float:
    step = LSTMStep(model, batch, precision)
    select = TokenSelector(batch, VOCAB, 1.0, None, None, torch.Generator().manual_seed(0))
    token = torch.zeros(batch, dtype=torch.long)
    started = time.perf_counter()
    for _ in range(length):
        token = select(step(token))
    return batch * length / (time.perf_counter() - started)


def plain_carried_fresh_process(length: int) -> float:
    """chars/s of `plain_carried` for one sample alone in a new Python process: the allocator as the issue met it."""
    command = [sys.executable, "-m", "benchmarks.sample_speed", "--plain-only", str(length)]
    return float(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short samples: a smoke test, not a figure")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; each figure is the best round")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="PyTorch threads (default: PyTorch's own choice, which follows OMP_NUM_THREADS)")
    parser.add_argument("--plain-only", type=int, metavar="LENGTH", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    plain = PlainLSTM(VOCAB).eval()
    if args.plain_only:
        print(plain_carried(plain, 1, args.plain_only))
        return
    model = LSTMLanguageModel(ModelConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_layers=LAYERS)).eval()
    one, many, refeed = (50, 10, 20) if args.quick else (1000, 1000, 60)  # characters per sample per round
    runs = {
        "plain carried, 1 sample, fresh process": lambda: plain_carried_fresh_process(one),
        "plain carried, 1 sample": lambda: plain_carried(plain, 1, one),
        "plain carried, 64 samples": lambda: plain_carried(plain, 64, many),
        "plain re-feed, 1 sample": lambda: plain_refeed(plain, refeed),
        "genseq plain path, 1 sample": lambda: genseq_generate(model, 1, one, fast=False),
        "genseq plain path, 64 samples": lambda: genseq_generate(model, 64, many, fast=False),
        "genseq fast path, 1 sample": lambda: genseq_generate(model, 1, one, fast=True),
        "genseq fast path fp32, 1 sample": lambda: genseq_generate(model, 1, one, fast=True, precision="fp32"),
        "genseq fast path, 64 samples": lambda: genseq_generate(model, 64, many, fast=True),
        "genseq fast path fp32, 64 samples": lambda: genseq_generate(model, 64, many, fast=True, precision="fp32"),
    }
    native = native_step_precisions()
    if native != STEP_PRECISIONS:
        print(f"skipping {', '.join(sorted(set(STEP_PRECISIONS) - set(native)))}: not native on this CPU "
              f"(int8 kernel here: {int8_kernel()})")
    for batch, length in ((1, one), (64, many)):
        for precision in native:
            runs[f"bare fast step {precision}, {batch} sample(s)"] = (
                lambda batch=batch, length=length, precision=precision: bare_fast_step(model, batch, length, precision))
    torch.empty(2**22)  # a 16 MB block freed: glibc raises its mmap threshold to it, the plain loop's best case
    rows = dict.fromkeys(runs, 0.0)
    for _ in range(1 if args.quick else args.rounds):  # interleaved rounds, best kept: robust to other load
        for name, run in runs.items():
            rows[name] = max(rows[name], run())
    print(json.dumps(rows), flush=True)
    why = "native bf16 here" if cpu_supports_bf16() else f"no native bf16 here; int8 kernel: {int8_kernel()}"
    print(f"{machine_name()}, {args.threads} thread(s); auto precision: {step_precision('auto', 1)} for 1 sample, "
          f"{step_precision('auto', 64)} for 64 ({why})")
    print(f"{'':40} {'chars/s':>10} {'x plain carried':>16}")
    for name, rate in rows.items():
        base = rows["plain carried, 64 samples" if "64" in name else "plain carried, 1 sample"]
        print(f"{name:40} {rate:10,.0f} {rate / base:16.2f}")


if __name__ == "__main__":
    main()
