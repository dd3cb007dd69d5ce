"""Infilling for MIDI models (performance events, the beat grid): bars or seconds of a piece drawn again, the rest kept
note for note.

The span is bars (`5-8`, counted from 1 at the very start of the file as its time signatures give them, 4/4 where it
has none, as MIDI has it; a file does not mark a pickup) or seconds (`12-20`), and becomes steps of the model's grid.
Notes that start inside it are drawn again. Every other note stays as the file has it: its time, length, velocity
and track, a note struck before the span and held into it too; so do the tempo map and the time signatures.

The fill is drawn from what comes before, led to the span's first step, under `rules.infill_midi.FillTime` (the
piece's instruments, meter and tempo; the fill ends where the model would move past the span). Candidates are ranked
as ABC and text fills are (`api.infill`): by log p(rest | before, fill), the rest being the piece's tokens from the
span's end on (up to `REST_TOKENS`), read from the piece with each fill in place. A fill's notes are placed on the
piece's own tempo map and cut at the span's end, so nothing after the span sounds different.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pretty_midi
import torch

from genseq.console import say
from genseq.errors import GenseqError, InputError
from genseq.lm.config import SampleConfig
from genseq.lm.sampling import generate, token_log_probs
from genseq.music.score import MIDI_SUFFIXES, Note, Score, read_score, to_pretty_midi
from genseq.music.spans import Span, midi_bar_span, parse_seconds, parse_span
from genseq.rules.infill_midi import FillTime, GridClock, clock_for, times
from genseq.tokenizers.beat import BeatTokenizer
from genseq.tokenizers.midi import MidiEncoding, StepNote, instrument_of

if TYPE_CHECKING:
    from genseq.api.model import TrainedModel

MidiPiece = Path | str | bytes | pretty_midi.PrettyMIDI | Score
"""A MIDI piece to fill: a file (a Path, or its name), its bytes, a PrettyMIDI or a Score."""
TOKENS_PER_STEP = {"beat": 8, "midi": 2}
"""Tokens a fill may hold per step of its span (beyond `SPARE_TOKENS`), well above what music holds: a beat-grid
step of a piano piece takes about 3 (a position, pitches and lengths), a 10 ms step of a performance under 1."""
SPARE_TOKENS = 64
REST_TOKENS = 1024
"""Tokens of the rest of the piece a fill is ranked by: a few bars to a minute of music, enough to hear how a fill
leads on, and a bound on the cost of ranking fills in a long piece (one pass over them)."""


def read_midi_piece(tokenizer: MidiEncoding, piece: MidiPiece, model: str, draws: str) -> Score:
    """The notes of a piece to fill: a .mid file named by a Path or its name, MIDI bytes, a PrettyMIDI or a Score.
    `model` names the kind of model and `draws` what it draws again ("chorale", "beats"), for the errors."""
    if isinstance(piece, str):
        if "\n" in piece or not piece.strip():
            raise InputError(f"a {model} model draws {draws} of a MIDI file again; give the path of a .mid file, "
                             "not text")
        piece = Path(piece)
    if isinstance(piece, Path):
        if not piece.is_file():
            raise InputError(f"{piece}: no such file")
        if piece.suffix.lower() not in MIDI_SUFFIXES:
            raise InputError(f"{piece}: a {model} model fills a MIDI file; give a .mid file")
        return read_score(piece)
    return tokenizer.score(piece)


def find_time_span(tokenizer: MidiEncoding, score: Score, span: str | tuple[Any, Any] | None, unit: str) -> Span:
    """Where a fill goes, in steps of the model's grid (`start` the first, `end` the one after): bars (`5-8`) or
    seconds (`12-20`). Refused before anything is drawn where it is not in the piece, holds all its notes, is shorter
    than a step, or (on the beat grid) crosses a change of meter, which a fill does not write."""
    if span is None:
        raise InputError("name the span to draw again, e.g. --bars 5-8 or --seconds 12-20")
    if unit == "bars":
        first, last = parse_span(span, "--bars")
        lines = score.bar_lines()
        found = midi_bar_span(len(lines) - 1, first, last)
        start, end = tokenizer.time_steps(score, [lines[found.start], lines[found.end]]).tolist()
        words, size = f"--bars {first}-{last}", found.size
    else:
        begin, finish = parse_seconds(span)
        words, size, first = f"--seconds {begin:g}-{finish:g}", None, 0
        if begin < 0 or finish > score.end() + 1e-6:
            raise InputError(f"{words} lies outside the piece, which lasts {score.end():.1f} s")
        start, end = tokenizer.time_steps(score, [begin, finish]).tolist()
        if end <= start:
            raise InputError(f"{words} is shorter than one step of this model's grid; give a longer span")
    onsets = np.concatenate([tokenizer.time_steps(score, [n.start for n in track.notes]) for track in score.tracks])
    if np.all((onsets >= start) & (onsets < end)):
        raise InputError(f"{words} holds every note of the piece; leave some of it to fill around (or draw a new "
                         "piece with `genseq sample`)")
    if isinstance(tokenizer, BeatTokenizer):
        bars = tokenizer.grid_bars(score, end)
        inside = [length for bar_start, length in bars if bar_start < end and bar_start + length > start]
        change = next((bar_start for bar_start, length in bars
                       if start < bar_start < end and length != inside[0]), None)
        if change is not None:
            seconds = float(tokenizer.step_seconds(score, [change])[0])
            raise InputError(f"{words} crosses a change of meter at {seconds:.2f} s, which a fill keeps as it is; draw "
                             "the spans before and after it apart")
    return Span(start, end, size, first)


def fill_length(tokenizer: MidiEncoding, span: Span) -> int:
    """Tokens a fill of `span` may hold (`TOKENS_PER_STEP`): a candidate still drawing past them is dropped."""
    return SPARE_TOKENS + TOKENS_PER_STEP[tokenizer.kind] * (span.end - span.start)


def led_context(tokenizer: MidiEncoding, score: Score, ids: list[int], span: Span) -> list[int]:
    """The piece's tokens before the span, then those that lead the stream to its first step, where the fill
    starts (time shifts; or bars, a meter and a position on the grid)."""
    clock = clock_for(tokenizer)
    state, cut = clock.start, len(ids)
    for index, token in enumerate(ids):
        following = clock.after(state, token)  # type: ignore[arg-type]
        if clock.time(following) >= span.start:  # type: ignore[arg-type]
            cut = index
            break
        state = following
    bars = tokenizer.grid_bars(score, span.end) if isinstance(clock, GridClock) else []
    return ids[:cut] + clock.lead_to(state, span.start, bars)  # type: ignore[arg-type]


def with_fill(tokenizer: MidiEncoding, score: Score, span: Span, notes: dict[Any, list[StepNote]]) -> Score:
    """`score` with the notes that start inside `span` replaced by `notes` (grid steps by instrument, those that
    start inside the span kept, cut at its end), placed on the score's tempo map; every other note as it was. Where
    tracks share an instrument (the voices of a choir), each new note goes to the one whose notes lie nearest its
    pitch (their median), as the encoding does not tell them apart."""
    kept: list[list[Note]] = []
    for track in score.tracks:
        onsets = tokenizer.time_steps(score, [note.start for note in track.notes]).tolist()
        kept.append([note for note, onset in zip(track.notes, onsets, strict=True)
                     if not span.start <= onset < span.end])
    registers = [float(np.median([n.pitch for n in notes])) if notes else 60.0 for notes in kept]
    for instrument, found in notes.items():
        drawn = [note for note in found if span.start <= note[1] < span.end]
        homes = [i for i, track in enumerate(score.tracks) if instrument_of(track) == instrument]
        if not drawn or not homes:
            continue
        pitches, starts, ends, velocities = zip(*drawn, strict=True)
        starts_s = tokenizer.step_seconds(score, starts).tolist()
        ends_s = tokenizer.step_seconds(score, [min(end, span.end) for end in ends]).tolist()
        for pitch, start, end, velocity in zip(pitches, starts_s, ends_s, velocities, strict=True):
            home = min(homes, key=lambda i: abs(registers[i] - pitch))
            kept[home].append(Note(pitch, start, end, velocity))
    tracks = tuple(replace(track, notes=tuple(sorted(notes, key=lambda n: (n.start, n.pitch, n.end))))
                   for track, notes in zip(score.tracks, kept, strict=True))  # a track left silent stays
    return replace(score, tracks=tracks)


def infill_midi(model: TrainedModel, score: Score, found: Span, config: SampleConfig, candidates: int,
                on_step: Callable[[torch.Tensor], None] | None) -> list[pretty_midi.PrettyMIDI]:
    """See `TrainedModel.infill`: the piece's notes and its span as `find_time_span` found it; `config` is the
    sampler's for one version (`api.infill.fill_config`)."""
    tokenizer = model.tokenizer
    assert isinstance(tokenizer, MidiEncoding)
    left = led_context(tokenizer, score, tokenizer.encode(score), found)
    kept = config.num_samples
    drawn = dataclasses.replace(config, num_samples=kept * candidates, stop_at_end=True)
    rule = FillTime(tokenizer, found.end, {instrument_of(track) for track in score.tracks})
    end = tokenizer.end_of_document
    prelude = list(model.payload.get("prelude") or [end])
    shown = None if on_step is None else lambda tokens: on_step(tokens[:kept])
    rows = generate(model.network, left, drawn, end, shown, prelude=prelude, rule=rule)
    finished = [i for i, ended in enumerate(rule.ended.tolist()) if ended]
    if not finished:
        raise GenseqError(f"none of the {len(rows)} candidates reached the span's end in the {drawn.length} tokens "
                          "allowed; draw more with --candidates or another --seed")
    if len(finished) < kept:
        say(f"only {len(finished)} of {len(rows)} candidates reached the span's end in the tokens allowed: "
            f"{len(finished)} version(s) written")
    versions = [with_fill(tokenizer, score, found, tokenizer.step_notes(left + rows[i], until=found.end))
                for i in finished]
    scores = rest_scores(model, [tokenizer.encode(version) for version in versions], found.end)
    return [to_pretty_midi(versions[i]) for i in scores.argsort(descending=True)[:kept].tolist()]


def rest_scores(model: TrainedModel, pieces: list[list[int]], until: int) -> torch.Tensor:
    """log p(rest | before, fill) [pieces] in nats for the tokens of one piece with different fills: the rest is
    every token from the first that stands at step `until` or later, up to `REST_TOKENS` of them (with the end of
    the piece where it comes within them); the context the pieces share is read once."""
    end = model.tokenizer.end_of_document
    clock = clock_for(model.tokenizer)
    rests = [next((i for i, time in enumerate(times(clock, ids)) if time >= until), len(ids)) for ids in pieces]
    shared = min(rests)
    for index in range(shared):
        if any(ids[index] != pieces[0][index] for ids in pieces):
            shared = index
            break
    rows = [[*ids[shared:], end][:rest - shared + REST_TOKENS] for ids, rest in zip(pieces, rests, strict=True)]
    context = [*(model.payload.get("prelude") or [end]), *pieces[0][:shared]]
    written = token_log_probs(model.network, context, rows)
    in_rest = torch.arange(written.shape[1])[None] >= torch.tensor([rest - shared for rest in rests])[:, None]
    return written.masked_fill(~in_rest, 0.0).sum(1)


__all__ = ["MidiPiece", "REST_TOKENS", "SPARE_TOKENS", "TOKENS_PER_STEP", "fill_length", "find_time_span",
           "infill_midi", "led_context", "read_midi_piece", "rest_scores", "with_fill"]
