"""Samples to files: the document itself, then whatever a person wants to hear or see of it."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.markup import escape

from genseq.console import say
from genseq.corpora.sources import Document
from genseq.errors import InputError
from genseq.files import atomic_file
from genseq.judge.report import report_section
from genseq.music.abc import abc_to_midi
from genseq.output import audio, base, engraving, plots, report
from genseq.tokenizers import Tokenizer


@dataclass
class Outputs:
    """What to write beside each sample."""

    wav: bool = False
    png: bool = False
    score: bool = False
    """SVG engraving and MusicXML (ABC and MIDI models)."""
    report: bool = False
    """index.html with every sample; implies wav, png and score."""
    soundfont: str | None = None
    judge_reference: str | None = None
    """With the report: judge the samples against these pieces (a built-in corpus: its held-out split)."""
    progress: bool = False
    """Show bars while the report's judge reads pieces."""

    def __post_init__(self) -> None:
        if self.report:
            self.wav = self.png = self.score = True


@dataclass
class Exported:
    files: list[dict[str, Any]] = field(default_factory=list)
    """Per sample: {"name", "text"?, kind: path, ...} (the shape `report.html_report` reads)."""
    unrendered: int = 0
    """ABC samples music21 could not parse (their text is still written)."""
    report: Path | None = None
    missing: list[str] = field(default_factory=list)
    """Libraries the report did without (each said once)."""


def file_stems(names: Sequence[str]) -> list[str]:
    """Output stems that keep each source's own name: song.mid -> song, tunes.abc#3 -> tunes-3. Sources of one
    stem in different folders add the folders that tell them apart (a/song, b/song -> a-song, b-song); a name
    still taken gets a number (song-2)."""
    parts = []
    for name in names:
        tune = re.fullmatch(r"(.*)#(\d+)", name)
        path = Path(tune.group(1) if tune else name)
        folders = [part for part in path.parent.parts if part not in (path.anchor, ".", "..")]
        parts.append([*folders, path.stem + (f"-{tune.group(2)}" if tune else "")])
    depth = [1] * len(parts)
    while True:
        stems = ["-".join(p[-d:]) for p, d in zip(parts, depth, strict=True)]
        taken = Counter(stems)
        deeper = [i for i, stem in enumerate(stems) if taken[stem] > 1 and depth[i] < len(parts[i])]
        if not deeper:
            break
        for i in deeper:
            depth[i] += 1
    unique: list[str] = []
    for stem in stems:
        number, candidate = 1, stem
        while candidate in unique:
            number += 1
            candidate = f"{stem}-{number}"
        unique.append(candidate)
    return unique


def planned_paths(stems: Sequence[str], tokenizer: Tokenizer, output_dir: Path, outputs: Outputs) -> list[Path]:
    """Every file `export_samples` may write, so nothing is overwritten without --force."""
    suffixes = [tokenizer.output_suffix]
    if tokenizer.kind != "char":
        suffixes += [".mid"] * (tokenizer.output_suffix != ".mid") + [".wav"] * outputs.wav + [".png"] * outputs.png
        suffixes += [".svg", ".musicxml"] * outputs.score
    paths = [output_dir / f"{stem}{suffix}" for stem in stems for suffix in suffixes]
    return paths + [output_dir / "index.html"] * outputs.report


def export_samples(samples: Sequence[Any], tokenizer: Tokenizer, output_dir: Path, outputs: Outputs,
                   settings: dict[str, Any], force: bool = False, stems: Sequence[str] | None = None,
                   own_titles: bool = False) -> Exported:
    """Write sample-01<suffix>, ... (or `stems` with the suffix) and their MIDI, WAV, piano roll, score and
    report as asked. A sampled tune's score is titled "genseq tune N", whatever title the model wrote; files
    named by `stems` (round trips of a user's files) and a user's pieces with a span drawn again (`own_titles`)
    keep their own."""
    own_titles = own_titles or stems is not None
    titles = [None] * len(samples) if own_titles else [f"genseq tune {i}" for i in range(1, len(samples) + 1)]
    stems = list(stems) if stems is not None else [f"sample-{i:02d}" for i in range(1, len(samples) + 1)]
    existing = [p for p in planned_paths(stems, tokenizer, output_dir, outputs) if p.exists()]
    if existing and not force:
        raise InputError(f"{existing[0]} already exists; pass --force to overwrite or pick another folder")
    output_dir.mkdir(parents=True, exist_ok=True)
    result = Exported()
    for sample, name, title in zip(samples, stems, titles, strict=True):
        stem = output_dir / name
        path = _named(stem, tokenizer.output_suffix)
        tokenizer.write(sample, str(path))
        entry: dict[str, Any] = {"name": path.name, "text_file" if isinstance(sample, str) else "midi": path}
        if isinstance(sample, str):
            entry["text"] = sample
        if tokenizer.kind != "char":
            _music_files(sample, tokenizer, stem, outputs, entry, result, title)
        result.files.append(entry)
    if outputs.report:
        sections = ([_judge_section(result.files, outputs.judge_reference, outputs.progress)]
                    if outputs.judge_reference else [])
        result.report = report.html_report(result.files, output_dir, settings, sections=sections)
    return result


def _named(stem: Path, suffix: str) -> Path:
    """`stem` with `suffix` added (not replacing a dot in the name: bwv66.6 -> bwv66.6.mid)."""
    return stem.with_name(stem.name + suffix)


def _judge_section(files: list[dict[str, Any]], reference: str, progress: bool) -> str:
    written = [Document(entry["name"], text=entry["text"]) if "text" in entry else
               Document(entry["name"], path=str(entry["midi"]), binary=True) for entry in files]
    return report_section(written, reference, progress)


def _music_files(
    sample: Any, tokenizer: Tokenizer, stem: Path, outputs: Outputs, entry: dict, result: Exported, title: str | None
) -> None:
    midi = sample
    if tokenizer.kind == "abc":
        try:
            midi = abc_to_midi(sample)
        except InputError as err:
            result.unrendered += 1
            entry["note"] = f"not rendered: {err}"
            return
        with atomic_file(_named(stem, ".mid"), "MIDI ") as handle:
            midi.write(handle)
        entry["midi"] = _named(stem, ".mid")
    source = sample if tokenizer.kind == "abc" else midi
    title = title if tokenizer.kind == "abc" else None  # a MIDI model writes no title: its scores keep the stem
    wanted = [("wav", outputs.wav, lambda: audio.midi_to_wav(midi, _named(stem, ".wav"), outputs.soundfont)),
              ("piano_roll", outputs.png, lambda: plots.piano_roll_png(midi, _named(stem, ".png"))),
              ("score", outputs.score, lambda: engraving.score_svg(source, _named(stem, ".svg"), title)),
              ("musicxml", outputs.score, lambda: engraving.musicxml(source, _named(stem, ".musicxml"), title))]
    for key, asked, make in wanted:
        if asked:
            try:
                entry[key] = make()
            except InputError as err:  # music a sample holds may be beyond one renderer; keep the others
                entry["note"] = f"no {key.replace('_', ' ')}: {err}"
            except base.MissingPackage as err:
                if not outputs.report:  # asked for by name: an error; implied by the report: the page does without
                    raise
                entry["note"] = f"no {key.replace('_', ' ')}: {err}"
                if str(err) not in result.missing:
                    result.missing.append(str(err))
                    say(f"[yellow]warning:[/] the report has no {key.replace('_', ' ')}s: {escape(str(err))}")
