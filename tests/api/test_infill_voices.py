"""Infilling with the shipped chorale model on a held-out Bach chorale: the rest of the piece unchanged note for
note, spans at the start and the end, the voice-leading rules at both joins, given voices kept, bad spans refused
before anything is drawn."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest

from genseq import api
from genseq.api.model import TrainedModel
from genseq.errors import ConfigError, InputError
from genseq.judge.chorale import grid_faults
from tests.helpers import ROOT

CHORALE = ROOT / "tests" / "data" / "chorale-bwv336.mid"
"""BWV 336, held out of bach-chorales-small's training: 32 beats of 4/4, rendered by music21 at 120 bpm."""
SECONDS_PER_BEAT = 0.5


@pytest.fixture(scope="module")
def chorales() -> TrainedModel:
    return api.load("bach-chorales-small")


@pytest.fixture(scope="module")
def original(chorales) -> pretty_midi.PrettyMIDI:
    """The chorale as the model reads it (on its grid), which the versions are compared with."""
    return chorales.tokenizer.decode(chorales.tokenizer.encode(str(CHORALE)))


def voice_notes(midi: pretty_midi.PrettyMIDI) -> list[set[tuple[int, float, float]]]:
    """Each voice's notes as (pitch, start, end), soprano first."""
    return [{(note.pitch, round(note.start, 6), round(note.end, 6)) for note in track.notes}
            for track in midi.instruments]


def assert_rest_unchanged(original: pretty_midi.PrettyMIDI, version: pretty_midi.PrettyMIDI, first: int, last: int,
                          drawn: tuple[int, ...] = (0, 1, 2, 3)) -> None:
    """Outside beats `first`-`last`, every note keeps its pitch, onset and end; a note over a join is cut there
    (the part outside kept); a kept voice keeps every note."""
    start, end = (first - 1) * SECONDS_PER_BEAT, last * SECONDS_PER_BEAT
    for voice, (before, after) in enumerate(zip(voice_notes(original), voice_notes(version), strict=True)):
        if voice not in drawn:
            assert after == before, f"kept voice {voice} changed"
            continue
        outside = set()
        for pitch, onset, ending in before:
            if ending <= start or onset >= end:
                outside.add((pitch, onset, ending))
            elif onset < start:
                outside.add((pitch, onset, start))
            elif ending > end:
                outside.add((pitch, end, ending))
        assert outside <= after, f"voice {voice} lost {sorted(outside - after)[:3]}"
        assert all(start <= onset and ending <= end for pitch, onset, ending in after - outside)


def faults(model: TrainedModel, version: pretty_midi.PrettyMIDI, first: int, last: int,
           drawn: tuple[int, ...] = (0, 1, 2, 3)) -> tuple[int, int]:
    """Parallels into every step of the span and the step after it, crossings on the span's steps, between pairs
    with a drawn voice."""
    pitches, _ = model.tokenizer.frames(model.tokenizer.encode(version))
    steps = model.tokenizer.steps_per_beat
    parallels, _ = grid_faults(pitches, range((first - 1) * steps, min(last * steps + 1, len(pitches))), drawn)
    _, crossings = grid_faults(pitches, range((first - 1) * steps, last * steps), drawn)
    return parallels, crossings


@pytest.mark.parametrize(("first", "last"), [(9, 16), (1, 8), (25, 32), (6, 9)])
def test_a_chorale_fill_keeps_the_rest_note_for_note_and_the_rules_at_both_joins(chorales, original, first, last):
    versions = chorales.infill(CHORALE, f"{first}-{last}", candidates=4, num_samples=2, seed=first)
    assert len(versions) == 2
    for version in versions:
        assert isinstance(version, pretty_midi.PrettyMIDI)
        assert voice_notes(version) != voice_notes(original)
        assert_rest_unchanged(original, version, first, last)
        assert faults(chorales, version, first, last) == (0, 0)


def test_given_voices_are_kept_and_the_drawn_ones_follow_the_rules_against_them(chorales, original):
    (version,) = chorales.infill(CHORALE, (9, 16), candidates=4, seed=2, voices="alto,tenor")
    assert_rest_unchanged(original, version, 9, 16, drawn=(1, 2))
    assert faults(chorales, version, 9, 16, drawn=(1, 2)) == (0, 0)
    (version,) = chorales.infill(CHORALE, "5-12", candidates=4, seed=3, voices=["Soprano"])
    assert_rest_unchanged(original, version, 5, 12, drawn=(0,))
    assert faults(chorales, version, 5, 12, drawn=(0,)) == (0, 0)


def test_notes_held_over_the_joins_are_cut_there(chorales, original):
    """In BWV 336 the alto holds a note over the end of beat 5 and the bass one over the end of beat 9: drawing
    beats 6-9 again ends the alto's note at the left join and strikes the bass's again at the right one."""
    left, right = 5 * SECONDS_PER_BEAT, 9 * SECONDS_PER_BEAT
    alto, bass = voice_notes(original)[1], voice_notes(original)[3]
    pitch, onset, _ = next(note for note in alto if note[1] < left < note[2])
    held_pitch, _, ending = next(note for note in bass if note[1] < right < note[2])
    (version,) = chorales.infill(CHORALE, "6-9", candidates=2, seed=4)
    assert (pitch, onset, left) in voice_notes(version)[1]
    assert (held_pitch, right, ending) in voice_notes(version)[3]


def test_bad_spans_and_voices_are_refused_before_anything_is_drawn(chorales):
    for span, fragment in [("0-2", "outside the piece"), ("30-34", "outside the piece, which has 32 beats"),
                           ("9-8", "empty"), ("1-32", "whole piece"), ("9.5-16", "not a span"),
                           ((9.5, 16), "whole beats")]:
        with pytest.raises(InputError, match=fragment):
            chorales.infill(CHORALE, span)
    with pytest.raises(InputError, match="name the beats"):
        chorales.infill(CHORALE)
    with pytest.raises(InputError, match="'viola' is not a voice of this model"):
        chorales.infill(CHORALE, "9-16", voices="alto,viola")
    with pytest.raises(InputError, match="names no voice"):
        chorales.infill(CHORALE, "9-16", voices=" ,")
    with pytest.raises(InputError, match="no such file"):
        chorales.infill(ROOT / "no-such.mid", "9-16")
    with pytest.raises(InputError, match="give a .mid file"):
        chorales.infill(ROOT / "tests" / "data" / "low-folk-tune.abc", "9-16")
    with pytest.raises(ConfigError, match="beam-size"):
        chorales.infill(CHORALE, "9-16", beam_size=2)
    with pytest.raises(InputError, match="give it with a piece to fill"):
        api.SampleRequest(voices="alto").prepare(chorales)


def test_voices_are_refused_for_a_model_without_voices():
    folk = api.load("folk-abc-small")
    tune = "X:1\nM:4/4\nL:1/8\nK:D\n|:A2FA DAFA|BAFA d2fd|A2FA DAFA|BEEF E2D2:|\n"
    with pytest.raises(InputError, match="--voices names voices of a chorale"):
        folk.infill(tune, "1-2", voices="alto")


def test_the_frames_are_the_decoded_notes_on_the_grid(chorales, original):
    pitches, at = chorales.tokenizer.frames(chorales.tokenizer.encode(str(CHORALE)))
    assert pitches.shape == (len(at), 4) and len(at) == 32 * chorales.tokenizer.steps_per_beat
    for voice, notes in enumerate(voice_notes(original)):
        for pitch, onset, ending in notes:
            step = int(round(onset / SECONDS_PER_BEAT * 4))
            assert np.all(pitches[step:int(round(ending / SECONDS_PER_BEAT * 4)), voice] == pitch)
