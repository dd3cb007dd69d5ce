"""The note model: hostile-file caps, transposition and time stretch."""

from __future__ import annotations

import time

import mido
import pytest

from genseq.errors import InputError
from genseq.music.score import MAX_FILE_BYTES, MAX_SECONDS, MAX_TICKS, read_score, stretch, transpose
from tests.helpers import band_with_tempo_changes, midi_bytes


def one_note_at(delta_ticks: int, ticks_per_beat: int = 480) -> bytes:
    return midi_bytes([[mido.Message("note_on", note=60, velocity=64, time=delta_ticks),
                        mido.Message("note_off", note=60, time=10)]], ticks_per_beat)


def test_a_huge_delta_time_is_refused_before_pretty_midi_allocates():
    started = time.monotonic()
    with pytest.raises(InputError, match="past the cap"):
        read_score(one_note_at(MAX_TICKS + 1), "far.mid")
    assert time.monotonic() - started < 1


def test_a_piece_longer_than_two_hours_is_refused():
    seconds_per_tick = 0.5  # one tick per beat at 120 bpm
    with pytest.raises(InputError, match=f"past the cap of {MAX_SECONDS:,} s"):
        read_score(one_note_at(int(MAX_SECONDS / seconds_per_tick) + 10, ticks_per_beat=1), "long.mid")


def test_an_oversized_file_is_refused_unread():
    with pytest.raises(InputError, match="MiB cap"):
        read_score(b"MThd" + bytes(MAX_FILE_BYTES), "big.mid")


@pytest.mark.parametrize("data, reason", [(b"", "is empty"), (b"RIFF0000", "not a readable MIDI file"),
                                          (one_note_at(0)[:12] + b"\xe7\x28" + one_note_at(0)[14:], "SMPTE")])
def test_unreadable_files_raise_one_line_input_errors_naming_the_file(data, reason):
    with pytest.raises(InputError, match=reason) as caught:
        read_score(data, "bad.mid")
    assert "bad.mid" in str(caught.value) and "\n" not in str(caught.value)


def test_a_missing_path_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        read_score(tmp_path / "nowhere.mid")


def test_transposition_moves_pitched_notes_drops_those_out_of_range_and_leaves_drums():
    score = read_score(band_with_tempo_changes())
    up = {(t.program, t.is_drum): t for t in transpose(score, 60).tracks}
    for before in score.tracks:
        after = up.get((before.program, before.is_drum))
        expected = [n.pitch + (0 if before.is_drum else 60) for n in before.notes]
        assert [p for p in expected if p <= 127] == ([n.pitch for n in after.notes] if after else [])
    assert (48, False) not in up and up[(0, True)] in score.tracks


def test_stretch_scales_times_and_tempo():
    score = read_score(band_with_tempo_changes())
    slower = stretch(score, 1.5)
    assert slower.tempo_bpm == pytest.approx(score.tempo_bpm / 1.5)
    assert slower.tracks[0].notes[-1].end == pytest.approx(score.tracks[0].notes[-1].end * 1.5)
