"""Judge a set of pieces against real ones: read both sets, measure each piece, compare the sets."""

from __future__ import annotations

import hashlib
import pickle
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import TypeVar

import numpy as np

from genseq.console import counting_bar
from genseq.corpora.sources import (
    Document,
    builtin_corpora,
    builtin_documents,
    expand_source,
    split_abc_tunes,
    split_documents,
)
from genseq.errors import GenseqError, InputError
from genseq.files import cache_dir, write_atomic
from genseq.judge.chorale import ChoraleCounts, chorale_counts
from genseq.judge.features import FEATURES, Notes, cross_distances, intra_distances, overlap_area, piece_features
from genseq.limits import MAX_REFERENCE
from genseq.lm.config import TrainConfig
from genseq.music import bars
from genseq.music.abc import abc_to_midi
from genseq.music.abc_header import meter_and_key
from genseq.music.score import MIDI_SUFFIXES, read_score, score_from_pretty_midi

STATS_FORMAT = 2
"""What a cached measurement holds; a new field (2: meter and key) makes older caches measure afresh."""
COPY_BARS = 4
"""ABC: a sample copies when it has this many consecutive bars exactly as a training tune has them."""
COPY_NOTES = 48
"""MIDI: ... when it has this many consecutive notes (pitch steps and onset gaps) as a training piece has them."""

Source = str | Path | Sequence[Document]


@dataclass
class PieceStats:
    """What one piece measures; `features` is None for a piece that does not parse or holds no pitched notes."""

    valid: bool
    features: dict[str, np.ndarray] | None = None
    chorale: ChoraleCounts | None = None
    tune: bars.Tune | None = None
    copy_keys: set = field(default_factory=set)
    meter: str | None = None
    """ABC: the header's meter and key (`abc_header.meter_and_key`), what the histograms count."""
    key: str | None = None


@dataclass
class Figure:
    key: str
    label: str
    samples: float | None
    reference: float | None
    ceiling: float | None
    kind: str = "share"
    """share (0..1, printed as %), number, or oa (an overlapping area, 0..1)."""


@dataclass
class Judgement:
    """Every figure of a sample set beside the reference's and the ceiling's (two random halves of the reference)."""

    kind: str
    """abc or midi."""
    figures: list[Figure]
    distances: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    """Per OA feature: the intra-reference and reference-to-sample distances (what the OA compares), for plots."""

    def __getitem__(self, key: str) -> Figure:
        return next(f for f in self.figures if f.key == key)

    def to_dict(self) -> dict[str, dict]:
        return {f.key: {"label": f.label, "samples": f.samples, "reference": f.reference, "ceiling": f.ceiling}
                for f in self.figures}


def read_pieces(source: Source) -> tuple[str, list[tuple[str, str | Path]]]:
    """("abc" | "midi", [(name, ABC text or MIDI path)]) of a folder, glob, file or documents.

    A folder with .abc files is read as ABC and its .mid files (the renderings genseq writes beside
    ABC samples) are left out. An .abc file holding several `X:` headers is cut into its tunes; one
    with at most one is one tune, whatever stands before its header (a sample's stray start).
    """
    if not isinstance(source, (str, Path)):
        binary = [doc for doc in source if doc.binary]
        if binary:
            return "midi", [(doc.name, Path(doc.path)) for doc in binary]
        return "abc", [(doc.name, doc.read()) for doc in source]
    paths = [Path(p) for p in expand_source(str(source))]
    if not paths:
        raise InputError(f"{source}: no such file, folder or glob match; check the path")
    abc = [p for p in paths if p.suffix.lower() == ".abc"]
    midi = [p for p in paths if p.suffix.lower() in MIDI_SUFFIXES]
    if not abc and not midi:
        raise InputError(f"{source}: holds no .abc or .mid files to judge; give a folder or glob of them")
    if not abc:
        return "midi", [(str(p), p) for p in midi]
    pieces = []
    for path in abc:
        text = path.read_text(encoding="utf-8", errors="replace")
        tunes = split_abc_tunes(text) if text.count("\nX:") + text.startswith("X:") > 1 else [text]
        pieces.extend((f"{path}#{i}" if len(tunes) > 1 else str(path), tune) for i, tune in enumerate(tunes))
    return "abc", pieces


def is_builtin(reference: Source) -> bool:
    """Whether `reference` names a built-in corpus (and no file or folder of that name is here)."""
    return isinstance(reference, str) and reference in builtin_corpora() and not Path(reference).exists()


def reference_sets(reference: Source, training: Source | None) -> tuple[Source, Source | None]:
    """A built-in corpus name means its held-out split (and its training split for copying), split as training
    splits it (`TrainConfig`'s validation share and seed)."""
    if is_builtin(reference):
        documents, _ = builtin_documents(reference)
        split = split_documents(documents, TrainConfig.val_fraction, TrainConfig.seed)
        return split.val, split.train if training is None else training
    return reference, training


def measure(kind: str, name: str, content: str | Path) -> PieceStats:
    """One piece's validity, features, chorale counts, bars (ABC) and copy keys."""
    tune = bars.read_tune(content) if kind == "abc" else None
    meter, key = meter_and_key(str(content)) if kind == "abc" else (None, None)
    try:
        score = score_from_pretty_midi(abc_to_midi(content), name) if kind == "abc" else read_score(content, name)
    except InputError:
        return PieceStats(False, tune=tune, copy_keys=bars.bar_ngrams(tune, COPY_BARS) if tune else set(),
                          meter=meter, key=key)
    notes = Notes(score)
    if not len(notes):
        return PieceStats(kind == "midi", tune=tune, meter=meter, key=key)
    return PieceStats(
        True, piece_features(notes, with_polyphony=kind == "midi"), chorale_counts(notes) if kind == "midi" else None,
        tune, bars.bar_ngrams(tune, COPY_BARS) if tune else note_runs(notes, COPY_NOTES), meter, key)


def note_runs(notes: Notes, length: int) -> set[int]:
    """Hashes of every run of `length` consecutive notes as (pitch step, onset gap in sixteenths): the same
    under transposition, so a transposed copy of a training piece is still found."""
    steps = np.diff(notes.pitch, prepend=notes.pitch[:1])
    gaps = np.round(np.diff(notes.start, prepend=notes.start[:1]) * 4).astype(int)
    tokens = list(zip(steps.tolist(), gaps.tolist(), strict=True))
    return {hash(tuple(tokens[i:i + length])) for i in range(1, len(tokens) - length + 1)}


def measure_all(kind: str, pieces: list[tuple[str, str | Path]], label: str, progress: bool) -> list[PieceStats]:
    stats = []
    with counting_bar(label, len(pieces), enabled=progress) as advance:
        for name, content in pieces:
            stats.append(measure(kind, name, content))
            advance(1)
    return stats


def _copy_keys(kind: str, pieces: list[tuple[str, str | Path]], progress: bool) -> set:
    """Every copy key of the training pieces (bar runs read from the text for ABC, no rendering)."""
    keys: set = set()
    with counting_bar("reading the training pieces", len(pieces), enabled=progress) as advance:
        for name, content in pieces:
            advance(1)
            if kind == "abc":
                keys |= bars.bar_ngrams(bars.read_tune(content), COPY_BARS)
            else:
                try:
                    keys |= note_runs(Notes(read_score(content, name)), COPY_NOTES)
                except InputError:
                    continue
    return keys


Measured = TypeVar("Measured")


def _cached(what: str, kind: str, pieces: list[tuple[str, str | Path]], build: Callable[[], Measured],
            enabled: bool) -> Measured:
    """`build()`, kept under genseq's cache where `enabled` (a built-in corpus: judged against again and again,
    on every report page, and measuring its pieces takes a minute). Keyed by the pieces themselves and the genseq
    and music21 versions, so a changed corpus or a new reader measures afresh; an unreadable entry is measured
    again."""
    if not enabled:
        return build()
    digest = hashlib.sha256(f"{what} {kind} genseq {version('genseq')} music21 {version('music21')} "
                            f"stats {STATS_FORMAT}".encode())
    for name, content in pieces:
        digest.update(name.encode() + b"\0")
        digest.update(content.encode() if isinstance(content, str) else Path(content).read_bytes())
    path = cache_dir() / "judge" / f"{what}-{digest.hexdigest()[:32]}.pickle"
    try:
        return pickle.loads(path.read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError):
        pass  # not measured yet, or torn: measured below
    value = build()
    try:
        write_atomic(path, pickle.dumps(value), "judge cache ")
    except GenseqError:  # a full disk: the next judgement measures again
        pass
    return value


def _share(values: list[bool]) -> float | None:
    return float(np.mean(values)) if values else None


def _patterns_per_1000(tunes: list[bars.Tune], size: int, rng: random.Random) -> float | None:
    """Distinct bar-line patterns per 1,000 tunes, over subsets of `size` tunes: the rate falls as a set grows,
    so sets are compared at one size (the samples')."""
    if not tunes or size < 1:
        return None
    size = min(size, len(tunes))
    draws = [rng.sample(tunes, size) for _ in range(1 if size == len(tunes) else 10)]
    return float(np.mean([len({bars.bar_line_pattern(t) for t in draw}) / size * 1000 for draw in draws]))


def set_figures(kind: str, stats: list[PieceStats], training_keys: set | None, pattern_size: int,
                rng: random.Random) -> dict[str, float | None]:
    """The figures of one set that need no other set (copying needs the training pieces' keys)."""
    figures: dict[str, float | None] = {"pieces": float(len(stats)), "validity": _share([s.valid for s in stats])}
    if kind == "abc":
        tunes = [s.tune for s in stats if s.tune is not None]
        figures["full_bars"] = _share([bars.all_bars_full(t) for t in tunes])
        figures["aabb"] = _share([bars.is_aabb_8_8(t) for t in tunes])
        figures["bar_line_patterns"] = _patterns_per_1000(tunes, pattern_size, rng)
    else:
        counts = ChoraleCounts()
        for s in stats:
            counts = counts.add(s.chorale) if s.chorale is not None else counts
        figures["parallels"] = counts.parallels / counts.notes if counts.notes else None
        figures["out_of_range"] = counts.out_of_range / counts.notes if counts.notes else None
        figures["crossings"] = counts.crossings / counts.four_voice_sonorities if counts.four_voice_sonorities else None
        figures["four_voices"] = counts.four_voice_beats / counts.sounding_beats if counts.sounding_beats else None
    if training_keys is not None:
        figures["copying"] = _share([bool(s.copy_keys & training_keys) for s in stats])
    return figures


LABELS = {
    "pieces": ("pieces judged", "number"),
    "validity": ("valid (ABC: music21 parses it; MIDI: has notes)", "share"),
    "full_bars": ("every bar full (first and last aside)", "share"),
    "aabb": ("AABB form, 8+8 bars", "share"),
    "bar_line_patterns": ("distinct bar-line patterns per 1,000 tunes", "number"),
    "parallels": ("parallel fifths and octaves per note", "number"),
    "out_of_range": ("notes outside the voice's usual range", "share"),
    "crossings": ("four-voice sonorities with voices crossed", "share"),
    "four_voices": ("time with exactly four voices sounding", "share"),
    "copying": ("copying: a run of a training piece", "share"),
}


HISTOGRAMS = {"meter": "meters: histogram overlap with the reference",
              "key": "keys: histogram overlap with the reference"}
"""ABC: what share of the pieces' header meters (keys) two sets have in common, 1 for the same mix."""


def histogram(values: Iterable[str | None]) -> dict[str, float]:
    """The share of each value among those given (None, a piece that names no meter or key, left out)."""
    values = [value for value in values if value is not None]
    counts: dict[str, float] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1 / len(values)
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def histogram_overlap(first: dict[str, float], second: dict[str, float]) -> float | None:
    """The sum over values of the smaller share: 1 for the same mix, 0 for none in common."""
    if not first or not second:
        return None
    return sum(min(share, second.get(value, 0.0)) for value, share in first.items())


def _feature_matrix(stats: list[PieceStats], name: str) -> np.ndarray:
    """[pieces, dims] of one feature over the pieces that have features."""
    rows = [s.features[name] for s in stats if s.features is not None]
    return np.array(rows) if rows else np.zeros((0, 1))


def judge(samples: Source, reference: Source, training: Source | None = None, *,
          max_reference: int = MAX_REFERENCE, seed: int = 0,
          progress: bool = False) -> Judgement:
    """Every figure of `samples` beside `reference`'s and the ceiling's (two random halves of the reference).

    `samples` and `reference` are folders, globs or files of .abc or .mid files; `reference` may be a built-in
    corpus name, whose held-out split is used and whose training split is what copying is checked against
    (else `training`, when given). `progress` shows a bar while the pieces are read.
    """
    kind, sample_pieces = read_pieces(samples)
    builtin, training_given = is_builtin(reference), training
    reference, training = reference_sets(reference, training)
    reference_kind, reference_pieces = read_pieces(reference)
    if reference_kind != kind:
        raise InputError(f"the samples are {kind.upper()} but the reference is {reference_kind.upper()}; "
                         "judge against pieces of the same kind")
    rng = random.Random(seed)
    if len(reference_pieces) > max_reference:
        reference_pieces = rng.sample(reference_pieces, max_reference)
    if len(reference_pieces) < 4:
        raise InputError(f"the reference holds {len(reference_pieces)} pieces; give at least 4 to compare against")
    sample_stats = measure_all(kind, sample_pieces, "reading the samples", progress)
    reference_stats = _cached("reference", kind, reference_pieces, partial(
        measure_all, kind, reference_pieces, "reading the reference", progress), enabled=builtin)
    training_keys = None
    if training is not None:
        training_kind, training_pieces = read_pieces(training)
        training_keys = _cached("training", training_kind, training_pieces, partial(
            _copy_keys, training_kind, training_pieces, progress), enabled=builtin and training_given is None)
    order = rng.sample(range(len(reference_stats)), len(reference_stats))
    half_a = [reference_stats[i] for i in order[: len(order) // 2]]
    half_b = [reference_stats[i] for i in order[len(order) // 2:]]
    size = len(sample_stats)
    columns = [set_figures(kind, group, training_keys, size, rng) for group in (sample_stats, reference_stats, half_a)]
    figures = [Figure(key, *LABELS[key][:1], *(c[key] for c in columns), LABELS[key][1]) for key in columns[0]]
    result = Judgement(kind, figures)
    if kind == "abc":
        for name, label in HISTOGRAMS.items():
            drawn, real, first, second = (histogram(getattr(s, name) for s in group)
                                          for group in (sample_stats, reference_stats, half_a, half_b))
            result.figures.append(Figure(name, label, histogram_overlap(drawn, real), None,
                                         histogram_overlap(first, second), "oa"))
    for name, (label, _) in FEATURES.items():
        if name == "polyphony" and kind != "midi":
            continue
        references, drawn = _feature_matrix(reference_stats, name), _feature_matrix(sample_stats, name)
        first, second = _feature_matrix(half_a, name), _feature_matrix(half_b, name)
        intra = intra_distances(references)
        across = cross_distances(references, drawn) if len(drawn) else None
        result.distances[name] = {"intra-reference": intra, "reference to samples": across}
        result.figures.append(Figure(
            name, f"OA: {label}", overlap_area(intra, across) if across is not None and len(intra) else None, None,
            overlap_area(intra_distances(second), cross_distances(second, first)) if len(first) and len(second) > 1
            else None, "oa"))
    return result
