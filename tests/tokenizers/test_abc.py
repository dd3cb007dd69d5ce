"""ABC tokenizer: exact text round trips, rendering real tunes to MIDI, and failures as InputError."""

import random
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genseq.corpora.sources import builtin_documents
from genseq.errors import InputError
from genseq.music import abc as abc_module
from genseq.music.abc import MAX_TUNE_CHARS, abc_to_midi, complete_abc, parse_abc
from genseq.tokenizers import AbcTokenizer, tokenizer_from_dict

ABC_ALPHABET = "XTMLKQ:0123456789/ ABCDEFGabcdefgz,'^_=|:[]()<>{}-.~!+\"%\n"


@pytest.fixture(scope="module")
def real_tunes() -> list[str]:
    """Sixty tunes drawn from the folk collections that ship with music21."""
    documents, _ = builtin_documents("folk-abc")
    return [d.text for d in random.Random(7).sample(documents, 60)]


def test_round_trip_returns_real_tunes_exactly(real_tunes):
    tokenizer = AbcTokenizer.fit(real_tunes)
    for tune in real_tunes:
        assert tokenizer.decode(tokenizer.encode(tune)) == tune


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=ABC_ALPHABET, max_size=300))
def test_round_trip_returns_abc_like_text_exactly(text):
    tokenizer = AbcTokenizer(ABC_ALPHABET)
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_tokenizer_survives_to_dict_and_back(real_tunes):
    tokenizer = AbcTokenizer.fit(real_tunes)
    rebuilt = tokenizer_from_dict(tokenizer.to_dict())
    assert isinstance(rebuilt, AbcTokenizer) and rebuilt == tokenizer


def test_real_tunes_render_to_midi_with_notes(real_tunes):
    for tune in real_tunes[:5]:
        midi = abc_to_midi(tune)
        assert sum(len(i.notes) for i in midi.instruments) > 0
        assert midi.get_end_time() > 1.0


@pytest.mark.parametrize("garbage", [
    "",
    "\x00\x01\x02",
    "!!!!|||]]][[[",  # music21: bad chord indicator
    "12345 67890",  # no note letters at all
    "X:1\nL:1/0\nK:C\nabc|\n",  # music21 divides by zero
    "X:1\nT:only a header\nK:G\n",  # parses, but holds no notes
    "X:1\nK:C\n" + "abc " * (MAX_TUNE_CHARS // 4),
])
def test_unreadable_tune_raises_one_line_input_error(garbage):
    with pytest.raises(InputError) as caught:
        abc_to_midi(garbage)
    assert "\n" not in str(caught.value)


def test_sample_without_x_or_length_header_still_renders():
    sample = "T:written by a model\nM:6/8\nK:G\nGAB c2d|e3 d3|\n"
    assert complete_abc(sample).startswith("X:1\n")
    assert parse_abc("T:no meter either\nK:D\nDEF GAB|\n").flatten().notes


def test_a_tune_whose_repeats_do_not_pair_up_plays_through_once():
    # a second ending after the end of its repeat: music21 can neither expand it nor write its MIDI as it stands
    tune = "X:1\nM:6/8\nL:1/8\nK:G\nGAB cde:||:dBG AFD|[1GAB cde:|[2dBG G3||\n[2GAB cde|]\n"
    played = abc_to_midi(tune)
    pitches = [note.pitch for note in played.instruments[0].notes]
    assert len(pitches) == 6 * 5 - 2 and pitches[:6] == [67, 69, 71, 72, 74, 76]  # each written note once (G3 is one)
    assert played.get_end_time() == pytest.approx(5 * 6 * 0.25)  # 5 bars of six quavers at 120 crotchets a minute


def test_chord_symbols_play_as_chords_each_until_the_next_under_the_tune():
    tune = 'X:1\nM:6/8\nL:1/8\nK:G\n"G"GAB "D7"cde|"G"dBG G3|]\n'
    played = abc_to_midi(tune)
    notes = sorted((n for track in played.instruments for n in track.notes), key=lambda n: (n.start, -n.pitch))
    melody = [n for n in notes if n.pitch >= 67]
    chords = [n for n in notes if n.pitch < 67]
    assert [n.pitch for n in melody] == [67, 69, 71, 72, 74, 76, 74, 71, 67, 67]
    # G for half a bar, D7 for half a bar, G for the last bar: quavers of 0.25 s at 120 crotchets a minute
    assert sorted({(n.start, n.end) for n in chords}) == [(0.0, 0.75), (0.75, 1.5), (1.5, 3.0)]
    assert {n.pitch % 12 for n in chords if n.start == 0.75} == {2, 6, 9, 0}  # D F# A C


def test_complete_abc_leaves_full_headers_alone(real_tunes):
    assert all(complete_abc(tune) == tune for tune in real_tunes)


def test_a_tune_music21_cannot_read_is_one_input_error_and_the_next_tune_renders(real_tunes):
    assert abc_to_midi(real_tunes[0]).get_end_time() > 0
    with pytest.raises(InputError) as caught:
        abc_to_midi("X:1\nL:1/0\nK:C\nabc|\n")
    assert "\n" not in str(caught.value)
    assert abc_to_midi(real_tunes[1]).get_end_time() > 0


def test_primer_file_is_read_from_its_first_tune(tmp_path):
    path = tmp_path / "primer.abc"
    path.write_text("%abc-2.1\n% file header\n\nX:3\nT:First\nK:G\nGAB|\n\nX:4\nT:Second\nK:D\n", encoding="utf-8")
    assert AbcTokenizer([]).read_primer(str(path)) == "X:3\nT:First\nK:G\nGAB|\n\n"


def test_primer_without_x_line_starts_like_a_training_tune(tmp_path):
    path = tmp_path / "primer.abc"
    path.write_text("T:Mine\nM:6/8\nK:G\n", encoding="utf-8")
    assert AbcTokenizer([]).read_primer(str(path)) == "X:1\nT:Mine\nM:6/8\nK:G\n"


def test_a_parse_past_its_time_ends_its_process_and_the_next_tune_renders(real_tunes, monkeypatch):
    """The time limit ends the parsing process: nothing is raised inside a thread of this one and no hook of
    this process is swapped (as a server or a notebook needs); the next tune parses in a fresh process."""
    hook = sys.unraisablehook
    monkeypatch.setattr(abc_module, "MAX_METER", 10**6)  # let a meter through that music21 never finishes laying out
    monkeypatch.setattr(abc_module, "MAX_RENDER_SECONDS", 1.0)
    started = time.perf_counter()
    with pytest.raises(InputError, match="took longer than 1 s"):
        abc_to_midi("X:1\nM:99999/1\nL:1/8\nK:C\n" + "C" * 2000)
    assert time.perf_counter() - started < 5.0
    assert sys.unraisablehook is hook
    assert abc_to_midi(real_tunes[2]).get_end_time() > 0
    assert parse_abc(real_tunes[3]).flatten().notes
