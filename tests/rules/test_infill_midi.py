"""The rule a MIDI fill is drawn under: its clocks read time as the decoders do, time past the span becomes the end
of the fill with the joint probability of the tokens it replaces, and the piece's instruments, meter and tempo
hold."""

from __future__ import annotations

import math

import pytest
import torch

from genseq.rules.infill_midi import FillTime, clock_for, times
from genseq.tokenizers import BeatTokenizer, MidiTokenizer
from tests.tokenizers.test_beat import score_file


@pytest.mark.parametrize("tokenizer", [BeatTokenizer(), MidiTokenizer()], ids=["beat", "midi"])
def test_the_clocks_read_time_as_the_decoders_do(tokenizer):
    """Every note's onset, as the decoder reads it in steps, is the clock's time at the token that strikes it."""
    ids = tokenizer.encode(score_file(3))
    struck = tokenizer.token_ids("PITCH" if tokenizer.kind == "beat" else "NOTE_ON")
    at = times(clock_for(tokenizer), ids)
    onsets = sorted((at[i], token - struck.start) for i, token in enumerate(ids) if token in struck)
    decoded = sorted((onset, pitch) for notes in tokenizer.step_notes(ids).values() for pitch, onset, _, _ in notes)
    assert onsets == decoded and len(onsets) == 120


def test_time_past_the_span_becomes_the_end_of_a_performance_fill():
    tokenizer = MidiTokenizer()
    shifts = tokenizer.token_ids("TIME_SHIFT")
    rule = FillTime(tokenizer, until=130, instruments={(0, False)})
    rule.start([tokenizer.end_of_document, *tokenizer.time_shifts(100)], batch=2)
    rule.advance(torch.tensor([shifts.start + 9, tokenizer.token_ids("NOTE_ON").start + 60]))  # 110, 100
    logits = torch.randn(2, tokenizer.vocab_size)
    raw = logits.clone()
    rule.mask(logits)
    for row, now in enumerate((110, 100)):
        late = [shifts.start + k - 1 for k in range(130 - now, len(shifts) + 1)]
        assert torch.isinf(logits[row, late]).all() and torch.isfinite(logits[row, shifts.start:late[0]]).all()
        assert logits[row, tokenizer.end_of_document] == pytest.approx(float(torch.logsumexp(raw[row, late], 0)))
    programs = tokenizer.token_ids("PROGRAM")
    assert torch.isfinite(logits[:, programs.start]).all() and torch.isinf(logits[:, programs.start + 1]).all()
    assert torch.isinf(logits[:, tokenizer.token_ids("DRUMS").start]).all()


def test_a_grid_fill_keeps_meter_and_tempo_moves_forward_in_its_bar_and_ends_with_the_bar():
    tokenizer = BeatTokenizer()
    bar, positions = tokenizer.token_ids("BAR").start, tokenizer.token_ids("POS")
    pitch, durations = tokenizer.token_ids("PITCH").start, tokenizer.token_ids("DUR")
    rule = FillTime(tokenizer, until=32, instruments={(0, False), (0, True)})
    rule.start([tokenizer.end_of_document, bar, bar, positions.start + 5], batch=2)  # bar 2 (steps 16-31), step 21
    rule.advance(torch.tensor([positions.start + 6, pitch + 60]))
    logits = torch.zeros(2, tokenizer.vocab_size)
    rule.mask(logits)
    forward = logits[0, positions.start:positions.stop]
    assert torch.isinf(forward[:6]).all() and torch.isfinite(forward[6:16]).all() and torch.isinf(forward[16:]).all()
    assert logits[0, tokenizer.end_of_document] == pytest.approx(0.0)  # the BAR that closes the span, alone
    assert math.isinf(logits[0, bar])
    for name in ("METER", "TEMPO", "TEMPO_FRACTION"):
        assert torch.isinf(logits[:, tokenizer.token_ids(name).start]).all()
    assert torch.isfinite(logits[0, tokenizer.token_ids("DRUMS").start])
    allowed = torch.isfinite(logits[1]).nonzero().flatten().tolist()
    assert allowed == list(durations)  # after a PITCH only its length, never the end
