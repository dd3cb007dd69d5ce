"""FillVoices on one step of a four-voice chorale, drawn in the soprano with the voices below given: what it masks
against a kept voice below on the same step, against the step after the span, and on the span's first step."""

from __future__ import annotations

import torch

from genseq.rules.harmonize import Template
from genseq.rules.infill_voices import FillVoices
from genseq.tokenizers.voices import VoicesTokenizer

TOKENIZER = VoicesTokenizer()
PITCH = TOKENIZER.token_ids("PITCH").start
HOLD = TOKENIZER.token_ids("HOLD").start
BEFORE = [72, 64, 57, 48]
"""The step before the span: C5 E4 A3 C3 (soprano and bass an octave apart, twice)."""


def allowed(template: Template, after: list[int] | None) -> tuple[set[int], bool]:
    """The soprano pitches left on the span's first step, and whether it may hold its note."""
    rule = FillVoices(TOKENIZER, template, after)
    context = [TOKENIZER.token_ids("METER").start + 15, TOKENIZER.token_ids("BAR").start,
               *(PITCH + pitch for pitch in BEFORE)]
    rule.start(context, 1)
    logits = torch.zeros(1, TOKENIZER.vocab_size)
    rule.mask(logits)
    return {pitch for pitch in range(128) if logits[0, PITCH + pitch] > float("-inf")}, bool(logits[0, HOLD] == 0)


def test_a_drawn_voice_neither_crosses_nor_moves_in_octaves_with_a_kept_voice_below():
    pitches, may_hold = allowed([None, PITCH + 62, PITCH + 57, PITCH + 50], None)  # the bass moves up C3 -> D3
    assert 62 in pitches and 61 not in pitches  # under the alto's D4: crossed
    assert 74 not in pitches and 73 in pitches  # C5 -> D5 over C3 -> D3: parallel octaves
    assert not may_hold  # the span's first step: a drawn voice strikes its own note


def test_the_last_step_moves_into_the_step_after_the_span_without_parallels():
    template = [None, PITCH + 64, PITCH + 57, PITCH + 48]
    pitches, _ = allowed(template, [76, 69, 57, 48])  # after the span the alto moves E4 -> A4, the soprano is E5
    assert 71 not in pitches  # B4 -> E5 over E4 -> A4: parallel fifths into the step after
    assert {70, 72} <= pitches
    assert 71 in allowed(template, None)[0]  # at the piece's end nothing follows
