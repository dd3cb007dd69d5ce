"""Fine-tuning against training from scratch: same data, same minutes, same machine, one invocation.

    python -m benchmarks.finetune --folk TUNES.abc --text NOVEL.txt --chorales MIDI_FOLDER --minutes 5

- Folk: the tunes of one collection (an .abc file), cut down to their music as the built-in folk corpus is
  (`abc_header.clean_tunes` with its recipe's fields: no titles, sources or comments), a fifth held out by tune.
  `--from folk-abc-small` and a planned run from scratch train on the rest for the same minutes; each, and the
  shipped model unchanged, is scored on the held-out tunes (nats/char). 100 samples of the shipped and of the
  fine-tuned model: how much of the collection's meter and key histograms they share (the judge's
  `histogram_overlap`), and the judge's validity and full bars.
  `--melodies` strips the tunes' chord symbols and annotations (the quoted strings of their bodies) first: the tunes
  a user writes without chords, and a measure of what fine-tuning gains where the notation is the one the shipped
  model learnt (its corpus has almost none: 0.7% of its characters, against a quarter of the Nottingham jigs').
- Text: the first 400 KB of a text (cut at a line break) to train on, the next 40 KB held out; `--from
  shakespeare-small` against from scratch.
- Chorales: a few four-voice MIDI pieces, two held out; `--from bach-chorales-small` for `--chorale-minutes`;
  its samples (under the model's rules, voice leading included) judged for parallels and crossings.

Each part runs only when its data is given. Runs go under `--work` (a temporary folder by default).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from genseq import api
from genseq.corpora.sources import builtin_corpora, split_abc_tunes
from genseq.judge import judge
from genseq.judge.core import histogram, histogram_overlap
from genseq.lm.probe import machine_name
from genseq.music.abc_header import clean_tunes, meter_and_key

TEXT_TRAIN_CHARS = 400_000
TEXT_HELD_CHARS = 40_000
_QUOTED = re.compile(r'"[^"\n]*"')
JUDGE_REFERENCE = 20
"""Reference tunes the judge reads for validity and full bars (figures of the samples alone); the histograms are
counted over the whole collection from the tunes' headers."""


def cut_at_line(text: str, limit: int) -> str:
    """`text` up to `limit` characters, ended at its last line break within them."""
    head = text[:limit]
    return head[: head.rfind("\n") + 1] or head


def both_runs(source: Path, base: str, tokenizer: str, minutes: float, work: Path, label: str) -> dict[str, Any]:
    """Fine-tune `base` and train from scratch on `source` for the same minutes; where each run folder is."""
    runs = {}
    for name, options in (("finetuned", {"start_from": base}), ("scratch", {"tokenizer": tokenizer})):
        started = time.perf_counter()
        result = api.train(str(source), name=str(work / f"{label}-{name}"), minutes=minutes, **options)
        runs[name] = {"run": result.run_dir, "steps": result.progress.step, "stopped_by": result.stopped_by,
                      "seconds": round(time.perf_counter() - started)}
        print(f"  {label} {name}: {result.progress.step} steps, stopped by {result.stopped_by}, "
              f"{runs[name]['seconds']} s with data preparation", flush=True)
    return runs


def held_out_losses(runs: dict[str, Any], base: str, held: Path) -> dict[str, float]:
    """Nats per token (character) on the held-out pieces of the shipped model and of both runs' best.pt."""
    models = {"shipped": base, **{name: run["run"] for name, run in runs.items()}}
    losses = {}
    for name, model in models.items():
        result = api.load(model).evaluate(str(held))
        losses[name] = round(result.loss, 4)
        print(f"  {name:>9}: {result.loss:.4f} nats/char on {result.tokens:,} held-out tokens "
              f"({result.unknown_tokens} unknown)", flush=True)
    return losses


def top(shares: dict[str, float], count: int = 6) -> str:
    return ", ".join(f"{value} {100 * share:.0f}%" for value, share in list(shares.items())[:count])


def without_chord_symbols(tune: str) -> str:
    """A tune with the quoted strings of its body (chord symbols, annotations) taken out, its header as it was."""
    header, found, body = tune.partition("\nK:")
    if not found:
        return tune
    key_line, newline, rest = body.partition("\n")
    return header + found + key_line + newline + _QUOTED.sub("", rest)


def folk(tunes_file: Path, minutes: float, samples: int, work: Path, melodies: bool = False) -> dict[str, Any]:
    written = split_abc_tunes(tunes_file.read_text(encoding="utf-8"))
    if melodies:
        written = [without_chord_symbols(tune) for tune in written]
    tunes, left_out = clean_tunes(written, builtin_corpora()["folk-abc"]["fields"])
    if left_out:
        print(f"folk: {sum(left_out.values())} tunes left out ({left_out})")
    (work / "folk-collection.abc").write_text("\n".join(tunes), encoding="utf-8")
    random.Random(0).shuffle(tunes)
    held, kept = tunes[: len(tunes) // 5], tunes[len(tunes) // 5:]
    (work / "folk-train.abc").write_text("\n".join(kept), encoding="utf-8")
    (work / "folk-held.abc").write_text("\n".join(held), encoding="utf-8")
    print(f"folk: {tunes_file.name}{' (melodies: chord symbols taken out)' if melodies else ''}, {len(tunes)} tunes: "
          f"{len(kept)} to train on, {len(held)} held out", flush=True)
    runs = both_runs(work / "folk-train.abc", "folk-abc-small", "abc", minutes, work, "folk")
    losses = held_out_losses(runs, "folk-abc-small", work / "folk-held.abc")
    histograms = {"collection": [histogram(meter_and_key(t)[i] for t in tunes) for i in (0, 1)]}
    overlaps = {}
    for name, model in (("shipped", "folk-abc-small"), ("finetuned", runs["finetuned"]["run"])):
        folder = work / f"folk-samples-{name}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        for index, tune in enumerate(api.load(model).sample(num_samples=samples, seed=0)):
            (folder / f"{index:03d}.abc").write_text(tune, encoding="utf-8")
        pieces = [p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.abc"))]
        histograms[name] = [histogram(meter_and_key(t)[i] for t in pieces) for i in (0, 1)]
        judged = judge(folder, work / "folk-collection.abc", max_reference=JUDGE_REFERENCE)
        overlaps[name] = {"meter": histogram_overlap(histograms[name][0], histograms["collection"][0]),
                          "key": histogram_overlap(histograms[name][1], histograms["collection"][1]),
                          "full_bars": judged["full_bars"].samples, "validity": judged["validity"].samples}
    for name, (meters, keys) in histograms.items():
        print(f"  {name:>10} meters: {top(meters)}\n  {'':>10} keys:   {top(keys)}")
    for name, figures in overlaps.items():
        print(f"  {name:>9} samples share {figures['meter']:.2f} of the collection's meter histogram and "
              f"{figures['key']:.2f} of its key histogram; {100 * figures['validity']:.0f}% parse, "
              f"{100 * (figures['full_bars'] or 0):.0f}% have every bar full")
    return {"tunes": len(tunes), "held_out": len(held), "melodies": melodies, "runs": runs, "loss": losses,
            "histogram_overlap": overlaps}


def text(novel: Path, minutes: float, work: Path) -> dict[str, Any]:
    whole = novel.read_text(encoding="utf-8")
    train = cut_at_line(whole, TEXT_TRAIN_CHARS)
    held = cut_at_line(whole[len(train):], TEXT_HELD_CHARS)
    (work / "text-train.txt").write_text(train, encoding="utf-8")
    (work / "text-held.txt").write_text(held, encoding="utf-8")
    print(f"text: {novel.name}, {len(train):,} characters to train on, the next {len(held):,} held out", flush=True)
    runs = both_runs(work / "text-train.txt", "shakespeare-small", "char", minutes, work, "text")
    return {"train_chars": len(train), "held_chars": len(held), "runs": runs,
            "loss": held_out_losses(runs, "shakespeare-small", work / "text-held.txt")}


def chorales(folder: Path, minutes: float, samples: int, work: Path) -> dict[str, Any]:
    pieces = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".mid", ".midi"))
    train, held = work / "chorales-train", work / "chorales-held"
    for target in (train, held):
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
    for index, piece in enumerate(pieces):
        shutil.copy(piece, (held if index < 2 else train) / piece.name)
    print(f"chorales: {len(pieces)} pieces from {folder}: {len(pieces) - 2} to train on, 2 held out", flush=True)
    started = time.perf_counter()
    result = api.train(str(train), name=str(work / "chorales-finetuned"), minutes=minutes,
                       start_from="bach-chorales-small")
    print(f"  finetuned: {result.progress.step} steps, stopped by {result.stopped_by}, "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    runs = {"finetuned": {"run": result.run_dir, "steps": result.progress.step, "stopped_by": result.stopped_by}}
    losses = held_out_losses(runs, "bach-chorales-small", held)
    out = work / "chorales-samples"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    crossed = counted = 0
    for index, midi in enumerate(api.load(result.run_dir).sample(num_samples=samples, seed=0)):
        midi.write(str(out / f"{index:03d}.mid"))
        crossed, counted = (a + b for a, b in zip((crossed, counted), crossed_onsets(midi), strict=True))
    judged = judge(out, train)
    figures = {key: judged[key].samples for key in ("parallels", "crossings", "four_voices", "out_of_range")}
    figures["written_crossings"] = crossed / max(counted, 1)
    print(f"  {samples} samples: parallel fifths and octaves per note {figures['parallels']:.4f}; voices crossed in "
          f"{crossed} of {counted} onsets as written (one track per voice), in "
          f"{100 * (figures['crossings'] or 0):.1f}% of four-voice sonorities as the judge follows the voices; "
          f"four voices {100 * (figures['four_voices'] or 0):.0f}% of the time")
    return {"pieces": len(pieces), "runs": runs, "loss": losses, "samples": figures}


def crossed_onsets(midi: Any) -> tuple[int, int]:
    """Onsets at which a sounding voice is above the nearest sounding voice written above it, and onsets with two
    voices or more, read from the voices model's own tracks (one per voice, soprano first): what its rule forbids.
    The judge follows voices by pitch through rests, which a piece with many rests can confuse."""
    onsets = sorted({note.start for track in midi.instruments for note in track.notes})
    crossed = counted = 0
    for onset in onsets:
        sounding = [max((n.pitch for n in track.notes if n.start <= onset < n.end), default=None)
                    for track in midi.instruments]
        pitches = [pitch for pitch in sounding if pitch is not None]
        counted += len(pitches) > 1
        crossed += any(lower > upper for upper, lower in zip(pitches, pitches[1:], strict=False))
    return crossed, counted


def summary(results: dict[str, Any]) -> str:
    """The README's table: held-out nats/char of each model, and what fine-tuning gains over from scratch."""
    lines = ["| data | shipped model unchanged | from scratch | fine-tuned | fine-tuned gains |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for part in ("folk", "text", "chorales"):
        if part in results:
            loss = results[part]["loss"]
            scratch = loss.get("scratch")
            gain = f"{scratch - loss['finetuned']:.3f}" if scratch is not None else "-"
            lines.append(f"| {part} | {loss['shipped']:.4f} | {scratch if scratch is not None else '-'} | "
                         f"{loss['finetuned']:.4f} | {gain} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folk", type=Path, help="an .abc file of one collection's tunes")
    parser.add_argument("--melodies", action="store_true", help="take the folk tunes' chord symbols out first")
    parser.add_argument("--text", type=Path, help="a UTF-8 text of at least 440 KB")
    parser.add_argument("--chorales", type=Path, help="a folder of a few four-voice MIDI pieces")
    parser.add_argument("--minutes", type=float, default=5.0, help="each folk and text run's budget")
    parser.add_argument("--chorale-minutes", type=float, default=2.0)
    parser.add_argument("--samples", type=int, default=100, help="folk samples judged per model")
    parser.add_argument("--chorale-samples", type=int, default=20)
    parser.add_argument("--work", type=Path, help="where the runs go (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if not (args.folk or args.text or args.chorales):
        parser.error("give --folk, --text or --chorales (or all three)")
    work = args.work or Path(tempfile.mkdtemp(prefix="genseq-finetune-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"{time.strftime('%Y-%m-%d %H:%M')} on {machine_name()}; runs under {work}", flush=True)
    results: dict[str, Any] = {"machine": machine_name(), "minutes": args.minutes}
    if args.folk:
        results["folk"] = folk(args.folk, args.minutes, args.samples, work, args.melodies)
    if args.text:
        results["text"] = text(args.text, args.minutes, work)
    if args.chorales:
        results["chorales"] = chorales(args.chorales, args.chorale_minutes, args.chorale_samples, work)
    print("\nheld-out nats per character (per token for chorales)\n" + summary(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
