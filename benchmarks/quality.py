"""Quality per CPU minute on tinyshakespeare (last 10% held out): genseq's defaults against the plain loop.

    python -m benchmarks.quality --minutes 10            # genseq default, then the plain fp32 loop
    python -m benchmarks.quality --minutes 10 --tuned    # adds the tuned plain loop (bf16, AdamW, cosine)
    python -m benchmarks.quality --skip-plain --set seq_len=64 --set dropout=0.3   # one trial of a sweep
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import fields

from benchmarks.plain_loop import SHAKESPEARE
from benchmarks.plain_loop import train as train_plain
from genseq import api
from genseq.config import ModelConfig


def overrides(settings: list[str]) -> tuple[dict, dict]:
    """KEY=VALUE settings split into ModelConfig fields and TrainConfig fields (values read as JSON)."""
    model_keys = {f.name for f in fields(ModelConfig)}
    model, train = {}, {}
    for setting in settings:
        key, _, value = setting.partition("=")
        (model if key in model_keys else train)[key] = json.loads(value)
    return model, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--tuned", action="store_true", help="also run the tuned plain loop")
    parser.add_argument("--skip-plain", action="store_true", help="do not run the plain fp32 loop")
    parser.add_argument("--skip-genseq", action="store_true", help="do not run genseq")
    parser.add_argument("--run-dir", help="keep genseq's run folder here (default: a temporary folder)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a ModelConfig or TrainConfig field for genseq's run, e.g. seq_len=64")
    args = parser.parse_args()
    model, train = overrides(args.set)
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        if not args.skip_genseq:
            result = api.train(str(SHAKESPEARE), name=args.run_dir or f"{folder}/run", minutes=args.minutes,
                               progress=False, model=model, **train)
            rows["genseq default"] = {"settings": args.set, "val_loss": result.progress.best_val_loss,
                                      "steps": result.progress.step,
                                      "chars_per_s": result.progress.tokens_seen / result.progress.elapsed_seconds}
            print(json.dumps({"genseq default": rows["genseq default"]}), flush=True)
    if not args.skip_plain:
        rows["plain fp32 loop"] = train_plain(args.minutes)
        print(json.dumps({"plain fp32 loop": rows["plain fp32 loop"]}), flush=True)
    if args.tuned:
        rows["plain loop, tuned"] = train_plain(args.minutes, tuned=True)
        print(json.dumps({"plain loop, tuned": rows["plain loop, tuned"]}), flush=True)
    print(f"{'':20} {'val nats/char':>14} {'chars/s':>10} {'steps':>7}")
    for name, row in rows.items():
        print(f"{name:20} {row['val_loss']:14.4f} {row['chars_per_s']:10,.0f} {row['steps']:7}")


if __name__ == "__main__":
    main()
