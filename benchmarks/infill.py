"""Infilling against the issue's targets: a cloze test of whether the fill score uses what follows, and the fills
themselves (whole bars, the rest unchanged, the time they take).

    python -m benchmarks.infill                       # 100 held-out tunes, passages and chorale spans
    python -m benchmarks.infill --tunes 20 --texts 20 --no-fills
    python -m benchmarks.infill --kinds chorale       # the chorale model alone
    python -m benchmarks.infill --kinds chorale --chorale-spans 20 --chorale-fill-beats 16   # 4 bars of 4/4
    python -m benchmarks.infill --kinds midi --midi-model checkpoints/chorale-beat   # a MIDI model you trained

Cloze, ABC (folk-abc-small on the held-out split of the built-in folk-abc corpus): for each tune, its true bars 5
to 8 and 9 other 4-bar spans (bars 5 to 8 of other held-out tunes of the same meter, unit length and mode, moved
to the tune's tonic by `transpose_abc`) are ranked by the infill score, log p(rest | before, span)
(`api.infill.fill_scores`), and by the score of the same model reading only what comes before, log p(span |
before). Printed: how often the true span ranks first under each, and under the joint log p(span + rest |
before). Text (shakespeare-small on the held-out split of the built-in shakespeare corpus): the same with
50-character spans, 200 characters before and 100 after, the distractors cut from other places of the held-out
text.

Cloze, chorales (bach-chorales-small on the held-out split of the built-in bach-chorales corpus, the chorales in
4/4): 8-beat spans starting on a bar line (beats 9-16, 17-24, ...), each against 9 spans of the same length from
other held-out chorales of the same mode (major or minor, by a key-profile estimate), moved to the chorale's tonic,
their voices written into the span's own bars; a note held over either join is struck again there, as a fill is
drawn (`api.infill_voices`). Ranked as for tunes.

Chorale fills: 8-beat spans of the held-out chorales (every meter; beats 9-16, 17-24, ... in turn until there are
`--chorale-spans`), drawn again with `TrainedModel.infill` (the defaults): the rest unchanged token for token (notes
held over a join struck again), and the parallel fifths or octaves and crossed voices the fill introduced, at both
joins and inside (`judge.chorale.grid_faults`), with the seconds per call.

Fills: for the same tunes, bars 5 to 8 drawn again with `TrainedModel.infill` (4 candidates, and the default
number): whether every version has exactly 4 full bars there and the rest unchanged, whether music21 reads it, and
the seconds each call takes (the first call, which warms up, is not counted).

MIDI fills (no MIDI model ships: `--midi-model` names one you trained): bars 3 to 6 of each piece of `--midi-pieces`
(default: the held-out chorales of the built-in bach-chorales corpus) drawn again, 4 candidates and the default
number: the share of versions in which every note that does not start in the span is as the file has it and every
new note lies inside the span, and the seconds per call.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genseq import api
from genseq.api.infill import fill_scores
from genseq.api.infill_midi import find_time_span
from genseq.api.infill_voices import plan_fill
from genseq.errors import GenseqError, InputError
from genseq.judge.chorale import grid_faults
from genseq.judge.core import reference_sets
from genseq.lm.sampling import token_log_probs
from genseq.music.abc import abc_to_midi
from genseq.music.abc_header import field_value, key_name, meter_and_key
from genseq.music.controls import transpose_abc
from genseq.music.score import read_score
from genseq.music.spans import Span, bar_span
from genseq.rules import CANDIDATES

DISTRACTORS = 9
SEMITONES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_UNIT = re.compile(r"^L:(.*)$", re.MULTILINE)


@dataclass
class Tune:
    text: str
    start: int
    end: int
    group: tuple[str | None, str, str]
    """Meter, unit length and mode: distractors come from the same group."""
    tonic: int

    @property
    def span(self) -> str:
        return self.text[self.start:self.end]


def held_out_tunes() -> list[Tune]:
    """Held-out tunes whose bars 5 to 8 are four full bars, with what groups them."""
    tunes = []
    for document in reference_sets("folk-abc", None)[0]:
        text = document.read()
        meter, key = meter_and_key(text)
        unit = _UNIT.search(text)
        if key is None or unit is None:
            continue
        try:
            span = bar_span(text, 5, 8)
        except InputError:
            continue
        if span.last_bar is not None:  # bar 8 a section's closing half bar: no distractor of 4 full bars fits there
            continue
        accidental = key[1:2] if key[1:2] in ("#", "b") else ""
        tonic, mode = SEMITONES[key[0]] + {"#": 1, "b": -1, "": 0}[accidental], key[1 + len(accidental):]
        tunes.append(Tune(text, span.start, span.end, (meter, field_value(unit.group(1)), mode), tonic))
    return tunes


def moved_span(tune: Tune, to: Tune) -> str:
    """`tune`'s bars 5 to 8 moved to `to`'s tonic (within -5..+6 semitones), written against its key signature."""
    shift = (to.tonic - tune.tonic + 5) % 12 - 5
    key = key_name(re.search(r"^K:(.*)$", tune.text, re.MULTILINE).group(1)) or "C"
    return transpose_abc(f"K:{key}\n{tune.span}", shift).split("\n", 1)[1]


def first_share(ranked: list[torch.Tensor]) -> float:
    """How often the true span (index 0) scores strictly above every distractor."""
    return sum(bool(scores[0] > scores[1:].max()) for scores in ranked) / len(ranked)


def shares(scores: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[float, float, float]:
    """How often the true span ranks first by the infill score (log p(rest | before, span)), by the left context
    alone (log p(span | before)), and by their sum (log p(span + rest | before))."""
    return (first_share([rest for _, rest in scores]), first_share([span for span, _ in scores]),
            first_share([span + rest for span, rest in scores]))


def abc_cloze(model: api.TrainedModel, tunes: list[Tune], chosen: list[Tune], rng: random.Random) -> tuple[float, ...]:
    groups = defaultdict(list)
    for tune in tunes:
        groups[tune.group].append(tune)
    scores = []
    for tune in chosen:
        others = rng.sample([t for t in groups[tune.group] if t is not tune], DISTRACTORS)
        spans = [tune.span, *(moved_span(other, tune) for other in others)]
        left, right = tune.text[:tune.start], tune.text[tune.end:]
        scores.append(fill_scores(model, left, spans, right))
    return shares(scores)


def text_cloze(model: api.TrainedModel, count: int, rng: random.Random, span: int = 50, before: int = 200,
               after: int = 100) -> tuple[float, ...]:
    text = reference_sets("shakespeare", None)[0][0].read()
    places = rng.sample(range(before, len(text) - span - after), count * (DISTRACTORS + 1))
    scores = []
    for i in range(count):
        at = places[i]
        spans = [text[p:p + span] for p in [at, *places[count + i * DISTRACTORS:count + (i + 1) * DISTRACTORS]]]
        left, right = text[at - before:at], text[at + span:at + span + after]
        scores.append(fill_scores(model, left, spans, right, ends=False))
    return shares(scores)


def fills(model: api.TrainedModel, chosen: list[Tune], candidates: int) -> dict[str, float]:
    """Bars 5 to 8 of each tune drawn again: the share that fits, the share music21 reads, the seconds per call."""
    model.infill(chosen[0].text, "5-8", candidates=candidates, seed=0)  # warm-up, not counted
    seconds, fit, parsed = [], 0, 0
    for seed, tune in enumerate(chosen):
        started = time.perf_counter()
        try:
            (version,) = model.infill(tune.text, "5-8", candidates=candidates, seed=seed)
        except GenseqError:  # no candidate closed its bars in time: counted as a miss
            seconds.append(time.perf_counter() - started)
            continue
        seconds.append(time.perf_counter() - started)
        again = bar_span(version, 5, 8)  # raises if bars 5 to 8 are no longer four full bars
        rest = tune.text[tune.end:]
        fit += version[:tune.start] == tune.text[:tune.start] and version.endswith(rest) and \
            not version[tune.start:again.start].strip() and not version[again.end:len(version) - len(rest)].strip()
        try:
            abc_to_midi(version)
            parsed += 1
        except InputError:
            pass
    return {"fit": fit / len(chosen), "parsed": parsed / len(chosen), "median_s": statistics.median(seconds),
            "max_s": max(seconds)}


# Chorales

MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
"""Krumhansl and Kessler's key profiles, from C."""
SPAN_BEATS = 8


@dataclass
class Chorale:
    path: str
    ids: list[int]
    pitches: np.ndarray
    """The voice grid (`VoicesTokenizer.frames`)."""
    at: np.ndarray
    tonic: int
    minor: bool
    four_four: bool


def key_of(pitches: np.ndarray) -> tuple[int, bool]:
    """Tonic and mode by the key profile that best matches the time each pitch class sounds."""
    sounding = pitches[pitches >= 0] % 12
    weights = np.bincount(sounding, minlength=12).astype(float)
    fits = [(np.corrcoef(np.roll(profile, tonic), weights)[0, 1], tonic, minor)
            for minor, profile in ((False, MAJOR), (True, MINOR)) for tonic in range(12)]
    _, tonic, minor = max(fits)
    return tonic, minor


def held_out_chorales(model: api.TrainedModel) -> list[Chorale]:
    tokenizer = model.tokenizer
    four_four = tokenizer.token_ids("METER").start + 4 * tokenizer.steps_per_beat - 1
    chorales = []
    for document in reference_sets("bach-chorales", None)[0]:
        try:
            ids = tokenizer.encode(document.path)
        except InputError:
            continue
        pitches, at = tokenizer.frames(ids)
        meters = {token for token in ids if tokenizer.token_name(token).startswith("METER")}
        chorales.append(Chorale(document.path, ids, pitches, at, *key_of(pitches), meters == {four_four}))
    return chorales


def span_starts(chorale: Chorale, steps_per_beat: int, beats: int = SPAN_BEATS) -> list[int]:
    """First beats of the spans of `beats` tested in a chorale: 9, 9 + beats, ... while a beat is left after."""
    return list(range(9, len(chorale.at) // steps_per_beat - beats + 1, beats))


def moved_voices(chorale: Chorale, first: int, model: api.TrainedModel, shift: int) -> list[int]:
    """The voice tokens of 8 beats from `first` of a chorale, moved by `shift` semitones, a note held into them
    struck on their first step."""
    tokenizer = model.tokenizer
    pitch, hold, rest = (tokenizer.token_ids(name).start for name in ("PITCH", "HOLD", "REST"))
    step = (first - 1) * tokenizer.steps_per_beat
    last = int(chorale.at[step + SPAN_BEATS * tokenizer.steps_per_beat - 1]) + tokenizer.voices
    voices = [token for token in chorale.ids[int(chorale.at[step]):last] if pitch <= token <= rest]
    for voice in range(tokenizer.voices):
        if voices[voice] == hold:
            sounding = int(chorale.pitches[step, voice])
            voices[voice] = rest if sounding < 0 else pitch + sounding
    return [token + shift if pitch <= token < hold else token for token in voices]


def chorale_cloze(model: api.TrainedModel, chorales: list[Chorale], count: int,
                  rng: random.Random) -> tuple[tuple[float, ...], int]:
    """The cloze shares (infill, left only, joint) over `count` spans of 4/4 chorales, and the spans tested."""
    tokenizer = model.tokenizer
    pitch, rest = tokenizer.token_ids("PITCH").start, tokenizer.token_ids("REST").start
    spans = [(chorale, first) for chorale in chorales if chorale.four_four
             for first in span_starts(chorale, tokenizer.steps_per_beat)]
    chosen = rng.sample(spans, min(count, len(spans)))
    end = tokenizer.end_of_document
    scores = []
    for chorale, first in chosen:
        pool = [(other, at) for other, at in spans if other.minor == chorale.minor and other is not chorale]
        others = rng.sample(pool, DISTRACTORS)
        plan = plan_fill(tokenizer, chorale.ids, Span(first - 1, first - 1 + SPAN_BEATS, SPAN_BEATS, first),
                         tuple(range(tokenizer.voices)))
        true = moved_voices(chorale, first, model, 0)
        candidates = [true, *(moved_voices(other, at, model, (chorale.tonic - other.tonic + 5) % 12 - 5)
                              for other, at in others)]
        rows = []
        for voices in candidates:  # the span's own bars, each candidate's voices in its slots
            tokens = iter(voices)
            rows.append([next(tokens) if token is None else token for token in plan.template])
        assert all(pitch <= token <= rest for row in rows for token, given in zip(row, plan.template, strict=True)
                   if given is None)
        context = [*(model.payload.get("prelude") or [end]), *plan.left]
        written = token_log_probs(model.network, context, [[*row, *plan.right, end] for row in rows])
        span = written[:, :len(plan.template)].sum(1)
        scores.append((span, written.sum(1) - span))
    return shares(scores), len(chosen)


def chorale_fills(model: api.TrainedModel, chorales: list[Chorale], count: int,
                  beats: int = SPAN_BEATS) -> dict[str, float]:
    """Spans of `beats` drawn again: the share with the rest unchanged, the faults introduced, the seconds a call."""
    tokenizer = model.tokenizer
    steps = tokenizer.steps_per_beat
    starts = {chorale.path: span_starts(chorale, steps, beats) for chorale in chorales}
    spans = [(chorale, starts[chorale.path][round_]) for round_ in range(8) for chorale in chorales
             if len(starts[chorale.path]) > round_][:count]
    model.infill(Path(spans[0][0].path), (spans[0][1], spans[0][1] + beats - 1), seed=0)  # warm-up
    seconds, unchanged, parallels, crossings = [], 0, 0, 0
    every = tuple(range(tokenizer.voices))
    for seed, (chorale, first) in enumerate(spans):
        last = first + beats - 1
        started = time.perf_counter()
        (version,) = model.infill(Path(chorale.path), (first, last), seed=seed)
        seconds.append(time.perf_counter() - started)
        ids = tokenizer.encode(version)
        plan = plan_fill(tokenizer, chorale.ids, Span(first - 1, last, beats, first), every)
        unchanged += ids[:len(plan.left)] == plan.left and ids[len(ids) - len(plan.right):] == plan.right
        pitches, _ = tokenizer.frames(ids)
        found, _ = grid_faults(pitches, range((first - 1) * steps, min(last * steps + 1, len(pitches))), every)
        _, crossed = grid_faults(pitches, range((first - 1) * steps, last * steps), every)
        parallels, crossings = parallels + found, crossings + crossed
    return {"spans": len(spans), "chorales": len({chorale.path for chorale, _ in spans}),
            "unchanged": unchanged / len(spans), "parallels": parallels, "crossings": crossings,
            "median_s": statistics.median(seconds), "max_s": max(seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", default="abc,text,chorale", help="Which models to measure (comma-separated).")
    parser.add_argument("--tunes", type=int, default=100)
    parser.add_argument("--texts", type=int, default=100)
    parser.add_argument("--chorale-spans", type=int, default=100)
    parser.add_argument("--chorale-fill-beats", type=int, default=SPAN_BEATS, help="Beats of each chorale fill.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-fills", action="store_true", help="Only the cloze tests.")
    parser.add_argument("--midi-model", type=Path, help="With --kinds midi: a MIDI model (a run folder or .pt).")
    parser.add_argument("--midi-pieces", type=Path, help="With --kinds midi: a folder of .mid files (default: the "
                        "held-out chorales of the built-in bach-chorales corpus).")
    args = parser.parse_args()
    kinds = set(args.kinds.split(","))
    rng = random.Random(args.seed)
    print(f"torch threads: {torch.get_num_threads()}")
    if "abc" in kinds:
        measure_abc(args, rng)
    if "text" in kinds:
        text_model = api.load("shakespeare-small")
        started = time.perf_counter()
        infill, alone, joint = text_cloze(text_model, args.texts, rng)
        print(f"text cloze: true 50 characters first among 10 over {args.texts} places: infill score {infill:.0%}, "
              f"left context only {alone:.0%} ({infill - alone:+.0%}); joint score {joint:.0%} "
              f"({time.perf_counter() - started:.0f} s)")
    if "chorale" in kinds:
        measure_chorales(args, random.Random(args.seed))
    if "midi" in kinds:
        measure_midi(args)


def measure_abc(args: argparse.Namespace, rng: random.Random) -> None:
    folk = api.load("folk-abc-small")
    tunes = held_out_tunes()
    sizes = defaultdict(int)
    for tune in tunes:
        sizes[tune.group] += 1
    eligible = [tune for tune in tunes if sizes[tune.group] > DISTRACTORS]
    chosen = rng.sample(eligible, min(args.tunes, len(eligible)))
    print(f"ABC: {len(tunes)} held-out tunes with four full bars 5-8, {len(eligible)} with {DISTRACTORS} others of "
          f"their meter, unit and mode; {len(chosen)} tested")
    started = time.perf_counter()
    infill, alone, joint = abc_cloze(folk, tunes, chosen, rng)
    print(f"ABC cloze: true bars 5-8 first among 10: infill score {infill:.0%}, left context only {alone:.0%} "
          f"({infill - alone:+.0%}); joint score {joint:.0%} ({time.perf_counter() - started:.0f} s)")
    if not args.no_fills:
        for candidates in sorted({4, CANDIDATES}):
            found = fills(folk, chosen, candidates)
            print(f"fills of bars 5-8, {candidates} candidates, {len(chosen)} tunes: {found['fit']:.0%} exactly four "
                  f"full bars with the rest unchanged, {found['parsed']:.0%} read by music21; "
                  f"{found['median_s']:.2f} s median, {found['max_s']:.2f} s at most")


def measure_chorales(args: argparse.Namespace, rng: random.Random) -> None:
    model = api.load("bach-chorales-small")
    chorales = held_out_chorales(model)
    print(f"chorales: {len(chorales)} held-out chorales read, {sum(c.four_four for c in chorales)} in 4/4 "
          f"({sum(c.minor for c in chorales)} minor)")
    started = time.perf_counter()
    (infill, alone, joint), tested = chorale_cloze(model, chorales, args.chorale_spans, rng)
    print(f"chorale cloze: true 8 beats first among 10 over {tested} spans: infill score {infill:.0%}, left "
          f"context only {alone:.0%} ({infill - alone:+.0%}); joint score {joint:.0%} "
          f"({time.perf_counter() - started:.0f} s)")
    if not args.no_fills:
        found = chorale_fills(model, chorales, args.chorale_spans, args.chorale_fill_beats)
        print(f"chorale fills of {args.chorale_fill_beats} beats, {CANDIDATES} candidates, {found['spans']} spans of "
              f"{found['chorales']} chorales: {found['unchanged']:.0%} with the rest unchanged; introduced "
              f"{found['parallels']} parallel fifths or octaves and {found['crossings']} crossed voices; "
              f"{found['median_s']:.2f} s median, "
              f"{found['max_s']:.2f} s at most")



def midi_fills(model: api.TrainedModel, paths: list[Path], candidates: int, bars: str = "3-6") -> dict[str, float]:
    """`bars` of each piece drawn again: the pieces refused (too short, a change of meter inside), the share of
    versions that keep every other note and hold the new ones inside the span, the seconds per call."""
    seconds, kept, refused = [], 0, 0
    model.infill(paths[0], bars, candidates=candidates, seed=0)  # warm-up
    for seed, path in enumerate(paths):
        score = read_score(path)
        try:
            started = time.perf_counter()
            (version,) = model.infill(path, bars, candidates=candidates, seed=seed)
            seconds.append(time.perf_counter() - started)
        except InputError:
            refused += 1
            continue
        found = find_time_span(model.tokenizer, score, bars, "bars")
        start, end = model.tokenizer.step_seconds(score, [found.start, found.end]).tolist()
        fits = len(version.instruments) == len(score.tracks)
        for track, instrument in zip(score.tracks, version.instruments, strict=False):
            onsets = model.tokenizer.time_steps(score, [note.start for note in track.notes]).tolist()
            outside = {(n.pitch, n.start, n.end, n.velocity) for n, onset in zip(track.notes, onsets, strict=True)
                       if not found.start <= onset < found.end}
            notes = {(n.pitch, n.start, n.end, n.velocity) for n in instrument.notes}
            fits &= outside <= notes and all(start - 1e-6 <= on < end and off <= end + 1e-6
                                             for _, on, off, _ in notes - outside)
        kept += fits
    return {"pieces": len(paths), "refused": refused, "kept": kept / max(1, len(seconds)),
            "median_s": statistics.median(seconds), "max_s": max(seconds)}


def measure_midi(args: argparse.Namespace) -> None:
    if args.midi_model is None:
        raise SystemExit("--kinds midi needs --midi-model: a MIDI model you trained (no MIDI model ships)")
    model = api.load(args.midi_model)
    paths = (sorted(args.midi_pieces.glob("*.mid")) if args.midi_pieces else
             [Path(document.path) for document in reference_sets("bach-chorales", None)[0]])
    print(f"MIDI: {model!r}, {len(paths)} pieces")
    for candidates in sorted({4, CANDIDATES}):
        found = midi_fills(model, paths, candidates)
        print(f"MIDI fills of bars 3-6, {candidates} candidates, {found['pieces']} pieces ({found['refused']} "
              f"refused): {found['kept']:.0%} keep every other note and hold the new ones inside the span; "
              f"{found['median_s']:.2f} s median, {found['max_s']:.2f} s at most")


if __name__ == "__main__":
    main()
