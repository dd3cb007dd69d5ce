"""What the sampler's precisions cost in quality: teacher-forced loss of the fast step per precision.

    python -m benchmarks.precision checkpoints/folk-abc-small.pt checkpoints/bach-chorales-small.pt
    python -m benchmarks.precision checkpoints/shakespeare-default --text ../shared/data/tinyshakespeare.txt

Each model reads held-out tokens one at a time through `fastpath.LSTMStep` in fp32, bf16 and
int8, and the mean cross-entropy of its next-token predictions is printed (nats/token) beside
the model's own forward pass over the same tokens. The tokens: with `--text`, the first
`--tokens` of the file's last `--held-out` share (the split `genseq train` holds out); without,
the checkpoint's prelude (its first validation document).
"""

from __future__ import annotations

import argparse

import torch
from torch.nn.functional import cross_entropy

from genseq import api
from genseq.lm.config import STEP_PRECISIONS
from genseq.lm.fastpath import LSTMStep, int8_kernel, native_step_precisions
from genseq.lm.probe import machine_name


@torch.inference_mode()
def losses(model: api.TrainedModel, ids: torch.Tensor) -> dict[str, float]:
    network = model.network.eval()
    logits, _ = network(ids[None, :-1])
    rows = {"forward fp32": cross_entropy(logits[0], ids[1:]).item()}
    for precision in native_step_precisions():
        step = LSTMStep(network, 1, precision)
        step.load_state(network.init_state(1))
        stepped = torch.stack([step(ids[t : t + 1])[0].clone() for t in range(len(ids) - 1)])
        rows[precision] = cross_entropy(stepped, ids[1:]).item()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--text", help="read held-out tokens from this text file instead of the prelude")
    parser.add_argument("--held-out", type=float, default=0.1, help="share at the end of --text held out")
    parser.add_argument("--tokens", type=int, default=20_000)
    args = parser.parse_args()
    native = native_step_precisions()
    skipped = [p for p in STEP_PRECISIONS if p not in native]
    print(machine_name() + (f": {', '.join(skipped)} skipped (not native here; int8 kernel: {int8_kernel()})"
                            if skipped else f" (int8 kernel: {int8_kernel()})"))
    print(f"{'model':40} {'tokens':>7} " + " ".join(f"{name:>12}" for name in ("forward fp32", *native)))
    for path in args.checkpoints:
        model = api.load(path)
        if args.text:
            with open(args.text, encoding="utf-8") as handle:
                text = handle.read()
            ids = model.tokenizer.encode(text[int(len(text) * (1 - args.held_out)) :][: args.tokens])
        else:
            ids = model.payload["prelude"]
        rows = losses(model, torch.tensor(ids))
        print(f"{path:40} {len(ids):7,} " + " ".join(f"{value:12.5f}" for value in rows.values()))


if __name__ == "__main__":
    main()
