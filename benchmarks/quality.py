"""Quality per budget: genseq's planned runs against the plain PyTorch loop, same data, machine and budget.

    python -m benchmarks.quality --budgets 300steps,1,3,10                   # tinyshakespeare, last 10% held out
    python -m benchmarks.quality --budgets 300steps,1,3,10 --corpus folk-abc # a built-in corpus, its held-out split
    python -m benchmarks.quality --budgets 10 --data FILE --skip-plain --set dropout=0.2   # one trial of a sweep
    python -m benchmarks.quality --sweep                                     # the runs behind planning's loss rule

A budget is minutes (`3`) or steps (`300steps`). For steps, both loops train the issue's short-run
shape (2x128, windows of 64, batch 32; the plain loop without dropout). For minutes, genseq plans
its own shape (`--size auto`), and the plain loop (fp32, Adam 2e-3, dropout 0.2, windows of 100,
batch 64) runs at 2x512 and at the shape genseq chose. Every model is scored by the same function
(`common.evaluate`, fp32) on the same held-out tokens; genseq's is its best.pt.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import add_data_argument, data_file, evaluate
from benchmarks.common import train as train_plain
from genseq import api
from genseq.lm import planning, probe
from genseq.lm.config import ModelConfig
from genseq.lm.runtime import cpu_supports_bf16

SHORT_RUN = {"num_layers": 2, "hidden_size": 128, "seq_len": 64, "batch_size": 32}
"""The issue's short run: 300 steps of this shape."""
SWEEP_SHAPES = ((2, 128, 32), (2, 256, 64), (2, 512, 64), (2, 768, 64))
SWEEP_TOKENS = (2_000_000, 6_000_000)


def overrides(settings: list[str]) -> tuple[dict, dict]:
    """KEY=VALUE settings split into ModelConfig fields and TrainConfig fields (values read as JSON)."""
    model_keys = {f.name for f in fields(ModelConfig)}
    model, train = {}, {}
    for setting in settings:
        key, _, value = setting.partition("=")
        (model if key in model_keys else train)[key] = json.loads(value)
    return model, train


def parse_budget(text: str) -> dict:
    text = text.strip()
    if text.endswith("steps"):
        return {"steps": int(text[: -len("steps")])}
    return {"minutes": float(text)}


class Bench:
    """One data set, prepared once by genseq, trained on by both loops."""

    def __init__(self, data: Path | None, corpus: str | None, folder: str):
        self.source = None if corpus else str(data_file(data))
        self.corpus, self.folder = corpus, folder
        prepared = api.prepare_data(self.source, corpus=corpus, progress=False)
        self.vocab = prepared.tokenizer.vocab_size
        self.train_ids = np.asarray(prepared.train.tokens, dtype=np.int64)
        self.val_ids = np.asarray(prepared.val.tokens, dtype=np.int64)
        self.runs = 0

    def genseq(self, budget: dict, model: dict, train: dict, size: str = "auto") -> dict:
        self.runs += 1
        run_dir = Path(self.folder) / f"run-{self.runs}"
        started = time.perf_counter()
        result = api.train(self.source, corpus=self.corpus, name=str(run_dir), progress=False, size=size,
                           model=model, **budget, **train)
        seconds = time.perf_counter() - started
        if result.stopped_by != "budget":  # the trainer turns SIGINT/SIGTERM into a clean stop: end here too
            raise SystemExit(f"genseq's run stopped by {result.stopped_by} at step {result.progress.step}")
        plan = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))["plan"]
        network = api.load(run_dir).network
        p = result.progress
        return {"val_loss": evaluate(network, self.val_ids), "own_val_loss": p.best_val_loss, "steps": p.step,
                "chars_per_s": p.tokens_seen / max(p.elapsed_seconds, 1e-9), "seconds": seconds,
                "shape": f"{plan['num_layers']}x{plan['hidden_size']}, windows of {plan['seq_len']}, "
                         f"batch {plan['batch_size']}", "precision": plan["precision"], "dropout": plan["dropout"],
                "weight_decay": plan["weight_decay"], "learning_rate": plan["learning_rate"], "plan": plan}

    def plain(self, budget: dict, **shape) -> dict:
        return train_plain(budget.get("minutes"), steps=budget.get("steps"),
                           data=(self.train_ids, self.val_ids, self.vocab), **shape)


def print_row(budget: str, name: str, row: dict) -> None:
    regularised = f", dropout {row['dropout']:g}, weight decay {row['weight_decay']:g}" if "weight_decay" in row else ""
    print(f"{budget:>9} {name:34} {row['val_loss']:8.4f} {row['steps']:7,} {row['chars_per_s']:9,.0f}  "
          f"{row.get('shape', '')} {row.get('precision', 'fp32')}{regularised}", flush=True)


def run_budgets(bench: Bench, budgets: list[str], args: argparse.Namespace) -> list[dict]:
    model, train = overrides(args.set)
    rows = []
    print(f"{'budget':>9} {'run':34} {'val':>8} {'steps':>7} {'chars/s':>9}  shape", flush=True)
    for text in budgets:
        budget = parse_budget(text)
        results = {}
        if "steps" in budget:
            shape = {k: SHORT_RUN[k] for k in ("num_layers", "hidden_size")}
            if not args.skip_genseq:
                results["genseq"] = bench.genseq(budget, {**shape, **model}, {
                    "seq_len": SHORT_RUN["seq_len"], "batch_size": SHORT_RUN["batch_size"], **train})
            if not args.skip_plain:
                results["plain, same shape, no dropout"] = bench.plain(
                    budget, hidden=128, layers=2, seq_len=64, batch=32, dropout=0.0)
        else:
            if not args.skip_genseq:
                results["genseq --size auto"] = bench.genseq(budget, model, train)
            if not args.skip_plain:
                results["plain 2x512"] = bench.plain(budget)
                chosen = results.get("genseq --size auto", {}).get("plan")
                if chosen and (chosen["num_layers"], chosen["hidden_size"]) != (2, 512):
                    results["plain at genseq's shape"] = bench.plain(
                        budget, hidden=chosen["hidden_size"], layers=chosen["num_layers"],
                        seq_len=chosen["seq_len"], batch=chosen["batch_size"])
        for name, row in results.items():
            print_row(text, name, row)
            rows.append({"budget": text, "run": name, **{k: v for k, v in row.items() if k != "plan"}})
    return rows


def run_sweep(bench: Bench, shapes: list[tuple[int, int, int]], budgets: list[int], earlier: list[dict]) -> list[dict]:
    """genseq at fixed token budgets and several shapes (step-based: the losses do not depend on the machine's
    load); fits planning's A and B (exponents fixed) to these rows and any `earlier` ones."""
    rows = list(earlier)
    for layers, hidden, batch in shapes:
        for tokens in budgets:
            steps = tokens // (64 * batch)
            row = bench.genseq({"steps": steps}, {"num_layers": layers, "hidden_size": hidden},
                               {"seq_len": 64, "batch_size": batch})
            shape = planning.Shape(layers, hidden, 64, batch)
            row.update(parameters=shape.parameters(bench.vocab), tokens=steps * shape.tokens_per_step)
            print(json.dumps({k: v for k, v in row.items() if k != "plan"}), flush=True)
            rows.append(row)
    unique = len(bench.train_ids)
    x = np.array([r["parameters"] ** -planning.ALPHA for r in rows])
    y = np.array([planning.effective_tokens(r["tokens"], unique) ** -planning.BETA for r in rows])
    loss = np.array([r["val_loss"] for r in rows])
    (e, a, b), *_ = np.linalg.lstsq(np.stack([np.ones_like(x), x, y], 1), loss, rcond=None)
    fitted = e + a * x + b * y
    print(f"fit: E {e:.4f}, A {a:.3f}, B {b:.3f} (ALPHA {planning.ALPHA}, BETA {planning.BETA}); "
          f"largest residual {np.abs(fitted - loss).max():.4f} nats")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(parser)
    parser.add_argument("--corpus", help="a built-in corpus instead of --data (its own held-out split)")
    parser.add_argument("--budgets", default="10", help="comma-separated: minutes (3) or steps (300steps)")
    parser.add_argument("--sweep", action="store_true", help="the fixed-token runs that planning's rule is fitted to")
    parser.add_argument("--sweep-shapes", default=",".join(f"{a}x{b}b{c}" for a, b, c in SWEEP_SHAPES),
                        help="LAYERSxHIDDENbBATCH, comma-separated")
    parser.add_argument("--sweep-tokens", default=",".join(map(str, SWEEP_TOKENS)), help="training tokens per run")
    parser.add_argument("--fit-with", type=Path, help="a --json file of earlier sweep rows to fit together with")
    parser.add_argument("--skip-plain", action="store_true", help="do not run the plain loop")
    parser.add_argument("--skip-genseq", action="store_true", help="do not run genseq")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a ModelConfig or TrainConfig field for genseq's runs, e.g. dropout=0.2")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    print(f"CPU: {probe.machine_name()}; torch {torch.__version__}; training precision auto = "
          f"{'bf16 (native bf16 here)' if cpu_supports_bf16() else 'fp32 (no native bf16 here)'}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        bench = Bench(args.data, args.corpus, folder)
        print(f"data: {args.corpus or args.data}: {len(bench.train_ids):,} train / {len(bench.val_ids):,} "
              f"held-out tokens, vocabulary {bench.vocab}", flush=True)
        if args.sweep:
            shapes = [tuple(int(v) for v in s.replace("b", "x").split("x")) for s in args.sweep_shapes.split(",")]
            earlier = json.loads(args.fit_with.read_text()) if args.fit_with else []
            rows = run_sweep(bench, shapes, [int(t) for t in args.sweep_tokens.split(",")], earlier)
        else:
            rows = run_budgets(bench, args.budgets.split(","), args)
    if args.json:
        args.json.write_text(json.dumps([{k: v for k, v in r.items() if k != "plan"} for r in rows], indent=1,
                                        default=lambda v: None if isinstance(v, float) and not math.isfinite(v)
                                        else str(v)))


if __name__ == "__main__":
    main()
