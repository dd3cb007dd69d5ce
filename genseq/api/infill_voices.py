"""Infilling for voices models (chorales): beats of a piece drawn again, in every voice or in some, the rest of the
piece kept note for note.

The piece is read as the model reads it (`tokenizers.voices`): one frame per grid step, a beat being a quarter
note. Beats count from 1 at the very start of the file, a pickup's beats included (a MIDI file does not mark where
its pickup ends: music21 writes a chorale's one-beat pickup as the first beat of a full bar). The span's tokens
become a template (`rules.harmonize.Template`), as a harmonisation's do: bar and meter tokens and the kept voices'
tokens given, the slots of the voices drawn again left to the model. `GivenVoice` forces what is given while
`FillVoices` keeps the voice-leading rules inside the span and at both joins.

A note held across a join is cut there: a drawn voice strikes its own note on the span's first beat (the note
before it ends at the join), and a note of the piece that was sounding into the beat after the span is struck
again there, its pitch and end unchanged. Kept voices keep their ties.

Candidates are ranked as ABC and text fills are (`api.infill`), by how likely the model finds what is known once
the fill is drawn: the rest of the piece after the span, and the kept voices' notes inside it (likelihood
weighting of draws in which those tokens were forced).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pretty_midi
import torch

from genseq.api.infill_midi import read_midi_piece
from genseq.errors import InputError
from genseq.lm.config import SampleConfig
from genseq.lm.sampling import Rules, generate, token_log_probs
from genseq.music.spans import Span, beat_span, parse_span
from genseq.rules.harmonize import GivenVoice, Template
from genseq.rules.infill_voices import FillVoices
from genseq.rules.voice_leading import SILENT
from genseq.tokenizers.voices import FOUR_PART_KEYS, VoicesTokenizer

if TYPE_CHECKING:
    from genseq.api.model import TrainedModel

ChoralePiece = Path | str | bytes | pretty_midi.PrettyMIDI
"""A piece a voices model fills: a MIDI file (a Path, or its name), its bytes, or a PrettyMIDI."""


@dataclass(frozen=True)
class ChoraleFill:
    """A span of a piece laid out for drawing: the tokens before it, its template, the tokens after it (notes held
    into it struck again), what each voice sounds just after it (None at the piece's end)."""

    left: list[int]
    template: Template
    right: list[int]
    after: list[int] | None


def drawn_voices(tokenizer: VoicesTokenizer, voices: str | Sequence[str] | None) -> tuple[int, ...]:
    """The voices to draw again (`alto,tenor`, names or initials in any case); None: all of them."""
    if voices is None:
        return tuple(range(tokenizer.voices))
    names = [name for name in (voices.split(",") if isinstance(voices, str) else voices) if name.strip()]
    keys = {name.lower(): voice for voice, name in enumerate(tokenizer.names)}
    keys |= FOUR_PART_KEYS if tokenizer.voices == 4 else {}
    known = ", ".join(name.lower() for name in tokenizer.names)
    drawn = set()
    for name in names:
        key = name.strip().lower().rstrip(".")
        if key not in keys:
            raise InputError(f"--voices: {name.strip()!r} is not a voice of this model; name some of {known}")
        drawn.add(keys[key])
    if not drawn:
        raise InputError(f"--voices names no voice; name some of {known}, e.g. --voices alto,tenor")
    return tuple(sorted(drawn))


def read_ids(tokenizer: VoicesTokenizer, piece: ChoralePiece) -> list[int]:
    """The piece's tokens as the model reads it."""
    return tokenizer.encode(read_midi_piece(tokenizer, piece, "chorale", "beats"))


def find_beats(tokenizer: VoicesTokenizer, ids: list[int], span: str | tuple[int, int] | None) -> Span:
    """Beats of the piece (`9-16`, from 1 at its start), refused before anything is drawn where they are not in it."""
    if span is None:
        raise InputError("name the beats to draw again, e.g. --beats 9-16")
    first, last = parse_span(span, "--beats")
    if not (isinstance(first, int) and isinstance(last, int)):
        raise InputError(f"--beats {span}: a span starts and ends on beats; give whole beats, e.g. --beats 9-16")
    steps = len(tokenizer.frames(ids)[1])
    return beat_span(-(-steps // tokenizer.steps_per_beat), first, last)


def plan_fill(tokenizer: VoicesTokenizer, ids: list[int], span: Span, drawn: tuple[int, ...]) -> ChoraleFill:
    """The span `span` (beats) of `ids` laid out for drawing `drawn` voices again (see the module docstring)."""
    pitches, at = tokenizer.frames(ids)
    first = span.start * tokenizer.steps_per_beat
    last = min(span.end * tokenizer.steps_per_beat, len(at))  # the step after the span
    start, end = int(at[first]), int(at[last - 1]) + tokenizer.voices
    voice_ids = tokenizer.token_ids("PITCH").start, tokenizer.token_ids("REST").start
    template: Template = []
    slot = 0
    for token in ids[start:end]:
        if voice_ids[0] <= token <= voice_ids[1]:
            template.append(None if slot in drawn else token)
            slot = (slot + 1) % tokenizer.voices
        else:
            template.append(token)
    right = ids[end:]
    if last == len(at):
        return ChoraleFill(ids[:start], template, right, None)
    hold, rest, pitch = tokenizer.token_ids("HOLD").start, tokenizer.token_ids("REST").start, voice_ids[0]
    for voice in drawn:  # a note held over the join is struck again after it
        index = int(at[last]) + voice - end
        if right[index] == hold:
            right[index] = rest if pitches[last, voice] == SILENT else pitch + int(pitches[last, voice])
    return ChoraleFill(ids[:start], template, right, [int(p) for p in pitches[last]])


def infill_voices(model: TrainedModel, piece: ChoralePiece, span: str | tuple[int, int] | None,
                  voices: str | Sequence[str] | None, config: SampleConfig, candidates: int,
                  on_step: Callable[[torch.Tensor], None] | None) -> list[pretty_midi.PrettyMIDI]:
    """See `TrainedModel.infill`: `config` is the sampler's for one version (`api.infill.fill_config`)."""
    tokenizer = model.tokenizer
    assert isinstance(tokenizer, VoicesTokenizer)
    ids = read_ids(tokenizer, piece)
    plan = plan_fill(tokenizer, ids, find_beats(tokenizer, ids, span), drawn_voices(tokenizer, voices))
    kept = config.num_samples
    drawn = dataclasses.replace(config, num_samples=kept * candidates, length=len(plan.template), stop_at_end=False)
    rule = Rules(FillVoices(tokenizer, plan.template, plan.after), GivenVoice(tokenizer, plan.template))
    end = tokenizer.end_of_document
    prelude = list(model.payload.get("prelude") or [end])
    shown = None if on_step is None else lambda tokens: on_step(tokens[:kept])
    rows = generate(model.network, plan.left, drawn, end, shown, prelude=prelude, rule=rule)
    scores = known_scores(model, plan, rows)
    return [tokenizer.decode(plan.left + rows[i] + plan.right) for i in scores.argsort(descending=True)[:kept].tolist()]


def known_scores(model: TrainedModel, plan: ChoraleFill, rows: list[list[int]]) -> torch.Tensor:
    """log p(what is known | before, fill) [rows] in nats: the kept tokens inside the span and all after it, with
    the end of the piece."""
    end = model.tokenizer.end_of_document
    context = [*(model.payload.get("prelude") or [end]), *plan.left]
    written = token_log_probs(model.network, context, [[*row, *plan.right, end] for row in rows])
    given = torch.tensor([token is not None for token in plan.template])
    known = torch.cat([given, torch.ones(written.shape[1] - len(given), dtype=torch.bool)])
    return written[:, known].sum(1)


def check(model: TrainedModel, piece: ChoralePiece, span: str | tuple[int, int] | None,
          voices: str | Sequence[str] | None) -> Span:
    """The span of a piece to fill, checked (the file, the beats, the voices) before anything is drawn."""
    tokenizer = model.tokenizer
    assert isinstance(tokenizer, VoicesTokenizer)
    found = find_beats(tokenizer, read_ids(tokenizer, piece), span)
    drawn_voices(tokenizer, voices)
    return found


def beats_length(tokenizer: Any, span: Span) -> int:
    """Tokens a fill of `span` beats holds at most (every voice of every step, a bar line and a meter at each)."""
    return (span.size or 0) * tokenizer.steps_per_beat * (tokenizer.voices + 2)


__all__ = ["ChoraleFill", "ChoralePiece", "beats_length", "check", "drawn_voices", "find_beats", "infill_voices",
           "known_scores", "plan_fill", "read_ids"]
