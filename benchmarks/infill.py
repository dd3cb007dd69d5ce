"""Infilling against the issue's targets: a cloze test of whether the fill score uses what follows, and the fills
themselves (whole bars, the rest unchanged, the time they take).

    python -m benchmarks.infill                       # 100 held-out tunes and 100 held-out passages
    python -m benchmarks.infill --tunes 20 --texts 20 --no-fills

Cloze, ABC (folk-abc-small on the held-out split of the built-in folk-abc corpus): for each tune, its true bars 5
to 8 and 9 other 4-bar spans (bars 5 to 8 of other held-out tunes of the same meter, unit length and mode, moved
to the tune's tonic by `transpose_abc`) are ranked by the infill score, log p(rest | before, span)
(`api.infill.fill_scores`), and by the score of the same model reading only what comes before, log p(span |
before). Printed: how often the true span ranks first under each, and under the joint log p(span + rest |
before). Text (shakespeare-small on the held-out split of the built-in shakespeare corpus): the same with
50-character spans, 200 characters before and 100 after, the distractors cut from other places of the held-out
text.

Fills: for the same tunes, bars 5 to 8 drawn again with `TrainedModel.infill` (4 candidates, and the default
number): whether every version has exactly 4 full bars there and the rest unchanged, whether music21 reads it, and
the seconds each call takes (the first call, which warms up, is not counted).
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass

import torch

from genseq import api
from genseq.api.infill import fill_scores
from genseq.errors import GenseqError, InputError
from genseq.judge.core import reference_sets
from genseq.music.abc import abc_to_midi
from genseq.music.abc_header import field_value, key_name, meter_and_key
from genseq.music.controls import transpose_abc
from genseq.music.spans import bar_span
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
        fit += version[:again.start] == tune.text[:tune.start] and version.endswith(rest) and \
            not version[again.end:len(version) - len(rest)].strip()
        try:
            abc_to_midi(version)
            parsed += 1
        except InputError:
            pass
    return {"fit": fit / len(chosen), "parsed": parsed / len(chosen), "median_s": statistics.median(seconds),
            "max_s": max(seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tunes", type=int, default=100)
    parser.add_argument("--texts", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-fills", action="store_true", help="Only the cloze tests.")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(f"torch threads: {torch.get_num_threads()}")

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

    text_model = api.load("shakespeare-small")
    started = time.perf_counter()
    infill, alone, joint = text_cloze(text_model, args.texts, rng)
    print(f"text cloze: true 50 characters first among 10 over {args.texts} places: infill score {infill:.0%}, "
          f"left context only {alone:.0%} ({infill - alone:+.0%}); joint score {joint:.0%} "
          f"({time.perf_counter() - started:.0f} s)")

    if not args.no_fills:
        for candidates in sorted({4, CANDIDATES}):
            found = fills(folk, chosen, candidates)
            print(f"fills of bars 5-8, {candidates} candidates, {len(chosen)} tunes: {found['fit']:.0%} exactly four "
                  f"full bars with the rest unchanged, {found['parsed']:.0%} read by music21; "
                  f"{found['median_s']:.2f} s median, {found['max_s']:.2f} s at most")


if __name__ == "__main__":
    main()
