"""How likely beam search's output is against sampling's and greedy's, under the model that wrote it.

    python -m benchmarks.beam checkpoints/folk-abc-small.pt --primer $'X:1\nM:6/8\nL:1/8\nK:D\n'

For one primer: `--seeds` samples at temperature 1.0 (one seed each), greedy decoding (temperature 0)
and beam search at each `--beams` size. Each output is scored by `sampling.log_probability` in one
teacher-forced pass (a piece that ended counts its end-of-document token), and its mean log-probability
per token is printed, with its length, whether it ended, the share of its 8-token windows seen earlier in
it (repetition) and the seconds it took (one thread is the fair setting: `OMP_NUM_THREADS=1`).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from genseq import api
from genseq.lm.sampling import log_probability

WINDOW = 8


def repeated_share(ids: list[int]) -> float:
    """The share of `WINDOW`-token windows that occurred earlier in the same output."""
    seen, repeats = set(), 0
    windows = [tuple(ids[i : i + WINDOW]) for i in range(len(ids) - WINDOW + 1)]
    for window in windows:
        repeats += window in seen
        seen.add(window)
    return repeats / len(windows) if windows else 0.0


def measure(model: api.TrainedModel, primer: str, length: int, **options: Any) -> dict[str, float]:
    started = time.perf_counter()
    ids = model.sample_ids(primer, length=length, **options)[0]
    seconds = time.perf_counter() - started
    eod = model.tokenizer.end_of_document
    ended = len(ids) < length
    scored = ids + [eod] if ended else ids
    total = log_probability(model.network, model.encode_primer(primer), scored, eod, model.payload.get("prelude", ()))
    return {"tokens": len(ids), "ended": float(ended), "mean_log_prob": total / len(scored),
            "repeated": repeated_share(ids), "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--primer", default="")
    parser.add_argument("--length", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--beams", type=int, nargs="+", default=[4])
    args = parser.parse_args()
    model = api.load(args.checkpoint)
    rows = {f"sampling T=1.0, {args.seeds} seeds (mean)": [
        measure(model, args.primer, args.length, temperature=1.0, top_k=None, top_p=None, seed=seed)
        for seed in range(1, args.seeds + 1)]}
    rows["greedy (T=0)"] = [measure(model, args.primer, args.length, temperature=0)]
    for beam in args.beams:
        rows[f"beam {beam}"] = [measure(model, args.primer, args.length, beam_size=beam)]
    print(f"{'decoder':34} {'tokens':>7} {'ended':>6} {'log-prob/token':>15} {'repeated':>9} {'seconds':>8}")
    for name, results in rows.items():
        mean = {key: statistics.mean(r[key] for r in results) for key in results[0]}
        print(f"{name:34} {mean['tokens']:7.0f} {mean['ended']:6.2f} {mean['mean_log_prob']:15.4f} "
              f"{mean['repeated']:9.2f} {mean['seconds']:8.2f}")


if __name__ == "__main__":
    main()
