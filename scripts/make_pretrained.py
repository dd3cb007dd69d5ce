"""Train the small models shipped in checkpoints/ and the examples in examples/, one per built-in corpus.

    python -m scripts.make_pretrained --minutes 15

For each corpus: train a 2x256 LSTM for the budget, copy its best checkpoint without optimizer state to
checkpoints/<corpus>-small.pt, write 8 samples (files, piano rolls, scores) to examples/<corpus>/,
and for ABC models measure the share of 100 samples at temperature 1.0 that music21 parses into notes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from genseq import api
from genseq.export import Outputs, export_samples
from genseq.tokenizers.abc import render_tunes

SAMPLE_SETTINGS = {"num_samples": 8, "temperature": 0.9, "seed": 1, "length": 2000}
DATA_OPTIONS = {"bach-chorales": {"augment": "transpose=-5..6"}}
"""410 chorales are 257k tokens, which a 2x256 model overfits within minutes: twelve transpositions."""


def make(corpus: str, minutes: float) -> dict:
    result = api.train(corpus=corpus, name=f"{corpus}-{minutes:g}min", minutes=minutes,
                       model={"hidden_size": 256, "num_layers": 2, "dropout": 0.2}, **DATA_OPTIONS.get(corpus, {}))
    shipped = api.export_checkpoint(result.run_dir / "best.pt", Path("checkpoints") / f"{corpus}-small.pt")
    model = api.load(shipped)
    samples = model.sample(**SAMPLE_SETTINGS)
    out = Path("examples") / corpus
    exported = export_samples(samples, model.tokenizer, out, Outputs(png=True, score=True),
                              {"checkpoint": str(shipped), **SAMPLE_SETTINGS}, force=True)
    summary = {
        "corpus": corpus, "minutes": minutes, "steps": result.progress.step,
        "best_val_loss": result.progress.best_val_loss, "checkpoint": str(shipped),
        "checkpoint_mb": round(shipped.stat().st_size / 2**20, 2), "samples": len(exported.files),
        "command": f"python -m scripts.make_pretrained --minutes {minutes:g} --corpus {corpus}",
        **DATA_OPTIONS.get(corpus, {}),
    }
    if model.tokenizer.kind == "abc":
        tunes = model.sample(num_samples=100, temperature=1.0, seed=2, length=2000)
        rendered = render_tunes(tunes)
        summary["parsed_share_t1"] = sum(m is not None for m in rendered.midis) / len(tunes)
        summary["parse_summary"] = rendered.summary
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary), flush=True)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--corpus", action="append", help="corpus to train (default: every built-in one)")
    args = parser.parse_args()
    for corpus in args.corpus or ["folk-abc", "bach-chorales"]:
        make(corpus, args.minutes)


if __name__ == "__main__":
    main()
