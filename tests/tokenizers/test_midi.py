"""The MIDI tokenizer: round trips on real files, tolerant decoding, bad files skipped and counted."""

from __future__ import annotations

import io
from collections import Counter

import pretty_midi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genseq import api
from genseq.errors import InputError
from genseq.music.score import Score
from genseq.tokenizers import MidiTokenizer, tokenizer_from_dict
from tests.helpers import (
    assert_writable,
    band_with_tempo_changes,
    kept_share,
    note_keys,
    read,
    silent_file,
)


def test_vocabulary_is_fixed_and_named():
    tokenizer = MidiTokenizer()
    assert tokenizer.vocab_size == 3 + 128 + 128 + 100 + 32 + 128 + 1
    names = [tokenizer.token_name(i) for i in range(tokenizer.vocab_size)]
    assert names[:3] == ["<pad>", "<eod>", "<unk>"]
    assert {"NOTE_ON_60", "NOTE_OFF_60", "TIME_SHIFT_10ms", "TIME_SHIFT_250ms", "TIME_SHIFT_1000ms",
            "VELOCITY_20", "PROGRAM_33", "DRUMS"} <= set(names)
    assert len(set(names)) == len(names)


def test_settings_round_trip_through_to_dict():
    tokenizer = MidiTokenizer(time_shift_ms=20, max_shift_steps=50, velocity_bins=16)
    rebuilt = tokenizer_from_dict(tokenizer.to_dict())
    assert rebuilt == tokenizer and rebuilt.vocab_size == tokenizer.vocab_size
    assert rebuilt.token_name(rebuilt.vocab_size - 2) == "PROGRAM_127"


def test_kept_notes_counts_notes_back_within_half_a_time_step():
    """10 ms steps: a note 4 ms off the grid is kept, one 2 ms long comes back 10 ms long and is not."""
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes = [pretty_midi.Note(80, 60, 0.0, 0.5), pretty_midi.Note(80, 62, 0.5, 0.502),
                   pretty_midi.Note(80, 64, 1.004, 1.5)]
    midi.instruments.append(piano)
    tokenizer = MidiTokenizer()
    assert tokenizer.kept_notes(midi, tokenizer.decode(tokenizer.encode(midi))) == (2, 3)
    assert "5 ms" in tokenizer.round_trip_tolerance


def test_band_file_with_tempo_changes_comes_back_note_for_note(tmp_path):
    path = tmp_path / "band.mid"
    path.write_bytes(band_with_tempo_changes())
    tokenizer = MidiTokenizer()
    original = pretty_midi.PrettyMIDI(str(path))
    decoded = tokenizer.decode(tokenizer.encode(path))
    assert note_keys(decoded, tokenizer) == note_keys(original, tokenizer)
    assert {(i.program, i.is_drum) for i in decoded.instruments} == {(0, False), (33, False), (48, False), (0, True)}


def test_overlapping_notes_of_one_pitch_keep_their_onsets_and_offsets():
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=5)
    piano.notes = [pretty_midi.Note(90, 60, 0.0, 1.0), pretty_midi.Note(40, 60, 0.5, 1.5),
                   pretty_midi.Note(70, 60, 1.5, 1.503), pretty_midi.Note(70, 62, 0.0, 0.0)]
    midi.instruments.append(piano)
    tokenizer = MidiTokenizer()
    assert note_keys(tokenizer.decode(tokenizer.encode(midi)), tokenizer) == note_keys(midi, tokenizer)


def test_long_gaps_become_several_time_shifts():
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes = [pretty_midi.Note(64, 60, 2.5, 2.6)]
    midi.instruments.append(piano)
    tokenizer = MidiTokenizer()
    names = [tokenizer.token_name(i) for i in tokenizer.encode(midi)]
    assert names == ["TIME_SHIFT_1000ms", "TIME_SHIFT_1000ms", "TIME_SHIFT_500ms", "PROGRAM_0", "VELOCITY_16",
                     "NOTE_ON_60", "TIME_SHIFT_100ms", "NOTE_OFF_60"]


def test_chorales_and_a_folder_of_files_keep_at_least_99_percent_of_notes(chorales):
    tokenizer = MidiTokenizer()
    files = chorales + [band_with_tempo_changes(seed) for seed in range(3)]
    kept, total = map(sum, zip(*(kept_share(read(data), tokenizer) for data in files), strict=True))
    print(f"round trip kept {kept}/{total} notes = {kept / total:.4%}")
    assert kept / total >= 0.99


def test_chorale_pitches_programs_and_drum_flags_are_exact(chorales):
    tokenizer = MidiTokenizer()
    for data in chorales:
        original = read(data)
        decoded = tokenizer.decode(tokenizer.encode(data))
        assert Counter(k[:3] for k in note_keys(decoded, tokenizer).elements()) == Counter(
            k[:3] for k in note_keys(original, tokenizer).elements())


def test_decoding_tolerates_stray_note_offs_and_closes_open_notes():
    tokenizer = MidiTokenizer()
    ids = [tokenizer.vocab_size + 7, 1, 3 + 128 + 60, 3 + 64, 3 + 128 + 128 + 49, 0, -4]  # off 60, on 64, 500 ms
    decoded = tokenizer.decode(ids)
    (piano,) = decoded.instruments
    assert [(n.pitch, n.start, n.end) for n in piano.notes] == [(64, 0.0, 0.5)]
    decoded.write(io.BytesIO())


def test_a_text_primer_is_refused_with_a_hint():
    with pytest.raises(InputError, match="MIDI model needs a MIDI primer"):
        MidiTokenizer().encode("C D E F G")


def test_written_samples_read_back_as_primers(tmp_path):
    tokenizer = MidiTokenizer()
    ids = tokenizer.encode(band_with_tempo_changes())
    path = tmp_path / f"sample{tokenizer.output_suffix}"
    tokenizer.write(tokenizer.decode(ids), str(path))
    primer = tokenizer.read_primer(str(path))
    assert isinstance(primer, Score) and tokenizer.encode(primer) == ids
    assert tokenizer.encode(str(path)) == ids


def test_a_file_without_notes_is_reported(tmp_path):
    path = tmp_path / "silence.mid"
    path.write_bytes(silent_file())
    with pytest.raises(InputError, match="silence.mid has no notes"):
        MidiTokenizer().encode(path)


def test_bad_files_in_a_folder_are_skipped_and_counted(tmp_path):
    good = band_with_tempo_changes()
    for i in range(9):
        (tmp_path / f"good{i}.mid").write_bytes(band_with_tempo_changes(i))
    (tmp_path / "corrupt.mid").write_bytes(b"MThd" + bytes(range(200)))
    (tmp_path / "truncated.mid").write_bytes(good[: len(good) // 2])
    (tmp_path / "silent.midi").write_bytes(silent_file())
    (tmp_path / "empty.mid").write_bytes(b"")
    prepared = api.prepare_data(str(tmp_path), tokenizer="midi", progress=False)
    assert prepared.description["skipped"] == 4  # corrupt, truncated, no notes, empty
    assert prepared.train.documents + prepared.val.documents == 9
    assert prepared.tokenizer == MidiTokenizer()


def test_a_folder_without_a_usable_file_is_one_line_error(tmp_path):
    for i in range(3):
        (tmp_path / f"broken{i}.mid").write_bytes(b"not a midi file at all " * i)
    with pytest.raises(InputError) as caught:
        api.prepare_data(str(tmp_path), tokenizer="midi", progress=False)
    assert "\n" not in str(caught.value)


notes = st.lists(st.tuples(st.sampled_from([(0, False), (40, False), (0, True)]), st.integers(0, 127),
                           st.integers(0, 400), st.integers(0, 250), st.integers(1, 127)), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(notes)
def test_encode_decode_keeps_onsets_offsets_and_velocities_per_pitch(drawn):
    """Overlapping notes of one pitch may swap offsets, so onsets and offsets are compared as multisets."""
    midi = pretty_midi.PrettyMIDI()
    for program, is_drum in {(p, d) for (p, d), *_ in drawn}:
        instrument = pretty_midi.Instrument(program, is_drum)
        instrument.notes = [pretty_midi.Note(v, pitch, start / 100, (start + length) / 100)
                            for (p, d), pitch, start, length, v in drawn if (p, d) == (program, is_drum)]
        midi.instruments.append(instrument)
    tokenizer = MidiTokenizer()
    before, after = note_keys(midi, tokenizer), note_keys(tokenizer.decode(tokenizer.encode(midi)), tokenizer)
    assert Counter(k[:4] + k[5:] for k in before.elements()) == Counter(k[:4] + k[5:] for k in after.elements())
    assert Counter(k[:3] + k[4:5] for k in before.elements()) == Counter(k[:3] + k[4:5] for k in after.elements())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-5, 530), max_size=300))
def test_any_id_sequence_decodes_to_a_writable_file(ids):
    assert_writable(MidiTokenizer().decode(ids))
