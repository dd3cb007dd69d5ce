"""Samples while a model learns (`--sample-every N`, or `eval`): a few short samples at every N-th step (or at every
evaluation), beside the validation loss of that step, so a user can read (or hear) what the numbers mean, and an
optional page of how they changed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from genseq.api.model import load
from genseq.errors import ConfigError
from genseq.files import write_atomic
from genseq.output.report import html_report

SAMPLES = 3
"""Samples at each step: enough to see the variety, short enough to take a moment even for a large model."""
LENGTH = 200
"""Tokens per sample: a few lines of text, a short tune or a few bars."""
SEED = 1
"""The same seed at every step, so two steps' samples differ by what the model learnt, not by chance."""
EACH_EVALUATION = "eval"
"""`sample_every` for samples at every evaluation: a time budget plans its evaluations, so no step count fits it
before it starts (the studio's Train tab samples so)."""


def read_cadence(sample_every: int | str) -> int | str:
    """`sample_every` as given (N, or `eval`) checked: a ConfigError in one line names what it takes."""
    if sample_every == EACH_EVALUATION or (type(sample_every) is int and sample_every >= 1):
        return sample_every
    if isinstance(sample_every, str) and sample_every.isdigit() and int(sample_every) >= 1:
        return int(sample_every)
    raise ConfigError(f"--sample-every must be a positive number of steps or {EACH_EVALUATION}, got {sample_every}")


def check_cadence(sample_every: int, eval_every: int | None) -> None:
    """Samples are drawn at an evaluation, from the checkpoint it writes, so their steps must be evaluation steps."""
    if eval_every is None or sample_every % eval_every:
        raise ConfigError(f"--sample-every {sample_every} must be a multiple of the run's evaluation interval "
                          f"({eval_every or 'planned over the budget'}); give --eval-every {sample_every} as well")


class ProgressSamples:
    """Writes, at every `sample_every`-th step (or every evaluation), `samples/step-000400.txt` (`.abc` for ABC
    models, `step-000400-1.mid`, ... for MIDI models) from the checkpoint an evaluation has just written, and a line
    of `samples/index.jsonl` with that step's loss."""

    def __init__(self, run_dir: Path, sample_every: int | str, report: bool = False) -> None:
        self.folder = Path(run_dir) / "samples"
        self.checkpoint = Path(run_dir) / "last.pt"
        self.sample_every = sample_every
        self.report = report

    def on_evaluation(self, step: int, val_loss: float) -> None:
        """Called after every evaluation; samples at the steps that are multiples of `sample_every` (at every one
        for `eval`)."""
        if isinstance(self.sample_every, int) and step % self.sample_every:
            return
        with torch.random.fork_rng(devices=[]):  # building the network draws initial weights: not training's draws
            model = load(self.checkpoint)
            samples = model.sample(num_samples=SAMPLES, length=LENGTH, seed=SEED)
        stem = f"step-{step:06d}"
        if model.tokenizer.reads_midi:
            files = [f"{stem}-{i}.mid" for i in range(1, len(samples) + 1)]
            for name, midi in zip(files, samples):
                self.folder.mkdir(parents=True, exist_ok=True)
                midi.write(str(self.folder / name))
        else:
            suffix = ".abc" if model.tokenizer.kind == "abc" else ".txt"
            separator = "\n" if suffix == ".abc" else "\n\n----\n\n"  # ABC tunes part at their X: lines
            files = [stem + suffix]
            write_atomic(self.folder / files[0], separator.join(s.rstrip("\n") + "\n" for s in samples))
        index = self.folder / "index.jsonl"
        line = json.dumps({"step": step, "val_loss": val_loss, "files": files}) + "\n"
        write_atomic(index, (index.read_bytes() if index.exists() else b"") + line.encode("utf-8"))
        if self.report:
            write_report(self.folder)


def read_index(folder: Path) -> list[dict[str, Any]]:
    """The steps sampled so far with their losses and files, oldest first."""
    index = Path(folder) / "index.jsonl"
    if not index.exists():
        return []
    return [json.loads(line) for line in index.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_report(folder: Path) -> Path:
    """`samples/index.html`: each sampled step with its validation loss and its samples, the report page's way."""
    folder = Path(folder)
    samples = []
    for entry in read_index(folder):
        loss = "n/a" if entry["val_loss"] is None else f"{entry['val_loss']:.4f}"
        for number, name in enumerate(entry["files"], 1):
            path = folder / name
            shown = {"name": f"step {entry['step']:,}" + (f", sample {number}" if len(entry["files"]) > 1 else ""),
                     "settings": {"validation loss (nats/token)": loss}}
            if path.suffix == ".mid":
                shown["midi"] = path
            else:
                shown.update(text_file=path, text=path.read_text(encoding="utf-8"))
            samples.append(shown)
    settings = {"samples per step": SAMPLES, "tokens per sample": LENGTH, "seed": SEED}
    return html_report(samples, folder, settings, title="samples as the model learnt")
