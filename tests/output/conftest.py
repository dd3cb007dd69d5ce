"""Fixtures of the output tests: a short band to render, plot, engrave and report."""

import pretty_midi
import pytest


@pytest.fixture
def band() -> pretty_midi.PrettyMIDI:
    """Four seconds of piano and a drum kit, built note by note."""
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0, name="piano")
    drums = pretty_midi.Instrument(program=0, is_drum=True, name="drums")
    for beat in range(8):
        piano.notes.append(pretty_midi.Note(90, 60 + beat, beat * 0.5, beat * 0.5 + 0.45))
        drums.notes.append(pretty_midi.Note(100, 36 if beat % 2 == 0 else 38, beat * 0.5, beat * 0.5 + 0.1))
    midi.instruments += [piano, drums]
    return midi
