"""The beat tokenizer: notes on a beat grid inside bars with the tempo map as tokens, round trips on real files."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from pathlib import Path

import mido
import pretty_midi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genseq import api
from genseq.corpora.sources import find_documents
from genseq.errors import ConfigError, InputError
from genseq.music.score import Score, read_score, stretch, transpose
from genseq.tokenizers import BeatTokenizer, MidiTokenizer, reads_midi, tokenizer_from_dict
from tests.helpers import assert_writable, band_with_tempo_changes, midi_bytes, read, silent_file

OLD_CONFIG = {"kind": "beat", "steps_per_beat": 4, "max_bar_beats": 8, "max_duration_beats": 16, "velocity_bins": 32}
"""A beat tokenizer saved before tempo tokens (the chorale model shipped until the voices one held this one)."""

BEAT = 480
"""Ticks per quarter note in the generated files."""
INSTRUMENTS = ((0, 0), (1, 33), (2, 48), (9, 0))
"""(channel, program): piano, bass, strings and drums."""


def score_file(seed: int, tempi: tuple[tuple[int, float], ...] = ((0, 100.0), (8, 140.0), (20, 70.0)),
               meters: tuple[tuple[int, int, int], ...] = ((0, 4, 4), (16, 3, 4))) -> bytes:
    """Four instruments of random notes at random ticks (overlaps of one pitch included) under a tempo map.

    `tempi` are (beat, bpm) and `meters` (beat, numerator, denominator); notes are fixed by `seed` alone,
    so files that differ only in `tempi` hold the same score.
    """
    rng = random.Random(seed)
    timing = [mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=beat * BEAT) for beat, bpm in tempi]
    timing += [mido.MetaMessage("time_signature", numerator=n, denominator=d, time=beat * BEAT)
               for beat, n, d in meters]
    tracks = [_delta(timing)]
    for channel, program in INSTRUMENTS:
        events = [mido.Message("program_change", channel=channel, program=program, time=0)]
        for _ in range(30):
            start, length = rng.randrange(0, 32 * BEAT, 10), rng.randrange(BEAT // 4, 3 * BEAT, 10)
            pitch, velocity = rng.choice((36, 38, 42, 60, 62, 64, 67)), rng.randint(1, 127)
            events += [mido.Message("note_on", channel=channel, note=pitch, velocity=velocity, time=start),
                       mido.Message("note_off", channel=channel, note=pitch, time=start + length)]
        tracks.append(_delta(events))
    return midi_bytes(tracks, BEAT)


def _delta(events: list) -> list:
    """Messages given absolute ticks in `time`, sorted and turned into delta times (offs before ons)."""
    ordered = sorted(events, key=lambda m: (m.time, m.type != "note_off"))
    now, out = 0, []
    for message in ordered:
        out.append(message.copy(time=message.time - now))
        now = message.time
    return out


def grid_keys(midi: pretty_midi.PrettyMIDI, tokenizer: BeatTokenizer, one_step_at_least: bool = False) -> Counter:
    """Each note as (program, drum, pitch, onset step, offset step, velocity bin), its times in beats.

    Beats come from the file's own tempo map (pretty_midi's ticks / resolution). Decoded notes sit on the
    grid, so two files agree on a key when every onset and offset is within half a step and every velocity
    in its bin. `one_step_at_least` counts a note shorter than a step as one step long, as the encoding does.
    """
    def step(seconds: float) -> int:
        return math.floor(midi.time_to_tick(seconds) / midi.resolution * tokenizer.steps_per_beat + 0.5 + 1e-6)

    keys: Counter = Counter()
    for instrument in midi.instruments:
        for note in instrument.notes:
            onset, offset = step(note.start), step(note.end)
            offset = max(offset, onset + 1) if one_step_at_least else offset
            keys[(0 if instrument.is_drum else int(instrument.program), instrument.is_drum, note.pitch, onset, offset,
                  note.velocity * tokenizer.velocity_bins // 128)] += 1
    return keys


def kept_notes(data: bytes, tokenizer: BeatTokenizer) -> tuple[int, int, int, int]:
    """(notes back within half a step in each file's beats, the same counting notes under a step as one step
    long, notes back within half a step in seconds as `BeatTokenizer.kept_notes` counts them, notes)."""
    original, decoded = read(data), tokenizer.decode(tokenizer.encode(data))
    before, after = grid_keys(original, tokenizer), grid_keys(decoded, tokenizer)
    assert Counter(k[:3] for k in before.elements()) == Counter(k[:3] for k in after.elements())
    lenient = grid_keys(original, tokenizer, one_step_at_least=True) & grid_keys(
        decoded, tokenizer, one_step_at_least=True)
    in_seconds, notes = tokenizer.kept_notes(data, decoded)
    assert notes == sum(before.values())
    return sum((before & after).values()), sum(lenient.values()), in_seconds, notes


def names(tokenizer: BeatTokenizer, ids: list[int]) -> list[str]:
    return [tokenizer.token_name(i) for i in ids]


def one_instrument(times: list[tuple[float, float]], meters: tuple[tuple[float, int, int], ...] = (),
                   tempo: float = 120.0) -> pretty_midi.PrettyMIDI:
    """A piano playing middle C at (start, end) seconds, with time signatures at (seconds, num, den)."""
    midi = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    midi.time_signature_changes = [pretty_midi.TimeSignature(n, d, t) for t, n, d in meters]
    piano = pretty_midi.Instrument(program=0)
    piano.notes = [pretty_midi.Note(80, 60, start, end) for start, end in times]
    midi.instruments.append(piano)
    return midi


def test_vocabulary_is_fixed_and_named():
    tokenizer = BeatTokenizer()
    assert tokenizer.vocab_size == 3 + 1 + 32 + 32 + 128 + 1 + 32 + 128 + 64 + 281 + 31 == 733
    every = names(tokenizer, list(range(tokenizer.vocab_size)))
    assert every[:4] == ["<pad>", "<eod>", "<unk>", "BAR"]
    assert {"METER_4/4", "METER_3/4", "METER_3/8", "METER_7/16", "POS_0", "POS_31", "PROGRAM_33", "DRUMS",
            "VELOCITY_31", "PITCH_60", "DUR_1", "DUR_64"} <= set(every)
    assert every[421:423] == ["TEMPO_20", "TEMPO_21"] and every[701:703] == ["TEMPO_300", "TEMPO_+1/32"]
    assert every[-1] == "TEMPO_+31/32" and len(set(every)) == len(every)
    assert every[:421] == names(BeatTokenizer(tempo=False), list(range(421)))


def test_an_old_config_without_the_tempo_setting_keeps_the_421_token_vocabulary_and_its_tokens():
    """The tempo tokens come after the old ones, so an old model's ids mean what they meant."""
    old = tokenizer_from_dict(OLD_CONFIG)
    assert not old.tempo and old.vocab_size == 421 and old == BeatTokenizer(tempo=False) != BeatTokenizer()
    assert old.to_dict() == {**OLD_CONFIG, "tempo": False} and tokenizer_from_dict(old.to_dict()) == old
    with_tempo = BeatTokenizer().encode(band_with_tempo_changes())  # notes on every beat, tempi at bar lines
    assert old.encode(band_with_tempo_changes()) == [i for i in with_tempo if i < 421] != with_tempo


def test_settings_round_trip_through_to_dict_and_bad_ones_are_refused():
    tokenizer = BeatTokenizer(steps_per_beat=12, max_bar_beats=6, max_duration_beats=8, velocity_bins=8)
    rebuilt = tokenizer_from_dict(tokenizer.to_dict())
    assert rebuilt == tokenizer and rebuilt.vocab_size == tokenizer.vocab_size != BeatTokenizer().vocab_size
    assert rebuilt.token_name(rebuilt.vocab_size - 313) == "DUR_96" and rebuilt.tempo
    with pytest.raises(ConfigError, match="steps_per_beat=0"):
        BeatTokenizer(steps_per_beat=0)


def test_beat_is_a_midi_tokenizer_everywhere():
    assert reads_midi("beat") and reads_midi("midi") and not reads_midi("abc") and not reads_midi("nonsense")
    assert BeatTokenizer.output_suffix == ".mid"


def test_a_folder_of_generated_files_comes_back_within_half_a_step(tmp_path, chorales):
    """Only notes shorter than half a step miss: the encoding makes every note at least one step long. With
    the tempo tokens the notes also come back at their times in seconds."""
    tokenizer = BeatTokenizer()
    for label, files in (("generated files", [score_file(seed) for seed in range(10)]), ("chorales", chorales)):
        strict, lenient, in_seconds, total = map(sum, zip(*(kept_notes(data, tokenizer) for data in files),
                                                          strict=True))
        print(f"{label}: {strict}/{total} notes = {strict / total:.2%} within half a step; "
              f"{lenient}/{total} = {lenient / total:.2%} counting notes under a step as one step; "
              f"{in_seconds}/{total} = {in_seconds / total:.2%} within half a step in seconds")
        assert strict / total >= 0.98 and lenient / total >= 0.99 and in_seconds / total >= 0.98
    untimed = BeatTokenizer(tempo=False)
    kept, notes = untimed.kept_notes(score_file(0), untimed.decode(untimed.encode(score_file(0))))
    assert kept / notes < 0.1  # at 120 bpm the notes of a file at 100, 140 and 70 bpm land elsewhere in time


def test_a_tempo_change_comes_back_with_both_tempi_and_the_onsets_within_half_a_step():
    """A piece at 100 bpm, then 140 bpm from beat 16: eighth notes, a dotted rhythm and sixteenths on the grid."""
    rhythm = [0, 2, 3, 4, 6, 7]  # onsets in sixteenths within each beat pair
    onsets = [pair * 8 + step for pair in range(20) for step in rhythm]  # 40 beats in sixteenths
    events = [mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100), time=0),
              mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(140), time=16 * BEAT)]
    notes = [message for i, onset in enumerate(onsets) for message in (
        mido.Message("note_on", note=60 + i % 12, velocity=80, time=onset * BEAT // 4),
        mido.Message("note_off", note=60 + i % 12, time=onset * BEAT // 4 + BEAT // 4))]
    data = midi_bytes([_delta(events), _delta(notes)], BEAT)
    tokenizer = BeatTokenizer()
    ids = tokenizer.encode(data)
    assert [n for n in names(tokenizer, ids) if n.startswith("TEMPO")] == ["TEMPO_100", "TEMPO_140"]
    fifth_bar = [i for i, name in enumerate(names(tokenizer, ids)) if name == "BAR"][4]
    assert names(tokenizer, ids)[fifth_bar + 1:fifth_bar + 3] == ["POS_0", "TEMPO_140"]  # beat 16
    decoded, original = tokenizer.decode(ids), read(data)
    times, tempi = decoded.get_tempo_changes()
    assert tempi == pytest.approx([100, 140], abs=1 / 64) and times == pytest.approx([0, 16 * 0.6])
    half_step = {100: 0.6 / 8, 140: 60 / 140 / 8}  # seconds in half a sixteenth at each tempo
    for before, after in zip(original.instruments[0].notes, decoded.instruments[0].notes, strict=True):
        tolerance = half_step[100 if before.start < 9.6 else 140]
        assert before.pitch == after.pitch and abs(before.start - after.start) < tolerance
        assert abs(before.end - after.end) < tolerance
    assert tokenizer.kept_notes(data, decoded) == (len(onsets), len(onsets))
    assert tokenizer.encode(decoded) == ids


def test_a_long_piece_at_an_odd_tempo_keeps_its_length():
    """225 s at 116.3 bpm, between two tempo bins: the drift over the piece stays under half a sixteenth."""
    beat = 60 / 116.3
    piece = pretty_midi.PrettyMIDI(initial_tempo=116.3)
    piano = pretty_midi.Instrument(program=0)
    piano.notes = [pretty_midi.Note(80, 60 + i % 7, i * beat / 2, (i + 1) * beat / 2) for i in range(872)]
    piece.instruments.append(piano)
    tokenizer = BeatTokenizer()
    decoded = tokenizer.decode(tokenizer.encode(piece))
    assert decoded.get_tempo_changes()[1].tolist() == [116.3125]
    assert abs(decoded.get_end_time() - piece.get_end_time()) < beat / 8
    assert tokenizer.kept_notes(piece, decoded) == (872, 872)
    untimed = BeatTokenizer(tempo=False)
    assert untimed.decode(untimed.encode(piece)).get_end_time() < piece.get_end_time() - 6


def test_decoding_uses_the_tempo_tokens_and_120_bpm_without_them():
    tokenizer = BeatTokenizer()
    by_name = {tokenizer.token_name(i): i for i in range(tokenizer.vocab_size)}

    def ids(text: str) -> list[int]:
        return [by_name[name] for name in text.split()]

    notes = "BAR POS_0 PITCH_60 DUR_4 BAR POS_0 PITCH_62 DUR_4 BAR POS_0 PITCH_64 DUR_4"
    assert tokenizer.decode(ids(notes)).get_tempo_changes()[1].tolist() == [120.0]
    assert [n.start for n in tokenizer.decode(ids(notes)).instruments[0].notes] == [0.0, 2.0, 4.0]
    # 120 bpm in bar 1, 90.5 bpm from bar 2; a fraction that does not follow its TEMPO is dropped
    timed = ("BAR POS_0 PITCH_60 DUR_4 BAR POS_0 TEMPO_90 TEMPO_+16/32 PITCH_62 DUR_4 BAR TEMPO_+4/32 "
             "POS_0 PITCH_64 DUR_4")
    decoded = tokenizer.decode(ids(timed))
    assert decoded.get_tempo_changes()[1].tolist() == pytest.approx([120.0, 90.5], abs=1e-4)
    assert [n.start for n in decoded.instruments[0].notes] == pytest.approx([0.0, 2.0, 2.0 + 4 * 60 / 90.5])


def test_kept_notes_counts_notes_back_within_half_a_step():
    """At 120 bpm a step is 0.125 s: a note shorter than half a step comes back one step long, a note over
    64 steps is cut; a note 0.4 step off the grid comes back within half a step."""
    piano = one_instrument([(0.0, 0.5), (0.5, 0.52), (1.05, 1.55), (2.0, 12.0)])
    tokenizer = BeatTokenizer()
    assert tokenizer.kept_notes(piano, tokenizer.decode(tokenizer.encode(piano))) == (2, 4)
    assert tokenizer.kept_notes(piano, piano) == (4, 4)
    moved = one_instrument([(0.1, 0.5), (0.5, 0.52), (1.05, 1.55), (2.0, 12.0)])  # 0.8 step late
    assert tokenizer.kept_notes(piano, moved) == (3, 4)


def test_encode_skips_unreadable_files_and_names_each_round_trip_after_its_file(tmp_path):
    folder = tmp_path / "songs"
    for name, data in (("a/song.mid", score_file(1)), ("b/song.mid", score_file(2)), ("bwv66.6.mid", score_file(3)),
                       ("broken.mid", b"MThd" + bytes(40)), ("silent.mid", silent_file())):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    piece = one_instrument([(0.0, 0.5), (0.5, 0.52), (1.05, 1.55), (2.0, 12.0)])
    piece.write(str(folder / "piece.mid"))
    encoding = api.encode_files([str(folder)], "beat", roundtrip_dir=tmp_path / "rt")
    assert sorted(encoding.skipped) == [str(folder / "broken.mid"), str(folder / "silent.mid")]
    assert "no notes" in encoding.skipped[str(folder / "silent.mid")]
    written = {Path(f.name).relative_to(folder).as_posix(): f.roundtrip.name for f in encoding.files}
    assert written == {"a/song.mid": "a-song.mid", "b/song.mid": "b-song.mid", "bwv66.6.mid": "bwv66.6.mid",
                       "piece.mid": "piece.mid"}
    assert sorted(p.name for p in (tmp_path / "rt").iterdir()) == sorted(written.values())
    by_name = {Path(f.name).name: f for f in encoding.files}
    assert (by_name["piece.mid"].kept_notes, by_name["piece.mid"].notes) == (2, 4)
    assert encoding.notes == 3 * 120 + 4 and encoding.kept_notes == sum(f.kept_notes for f in encoding.files)
    assert read((tmp_path / "rt" / "bwv66.6.mid").read_bytes()).get_tempo_changes()[1].tolist() == pytest.approx(
        [100, 140, 70], abs=1 / 64)
    with pytest.raises(InputError, match="already exists; pass --force"):
        api.encode_files([str(folder)], "beat", roundtrip_dir=tmp_path / "rt")


def test_programs_and_drum_flags_come_back_as_instruments():
    decoded = BeatTokenizer().decode(BeatTokenizer().encode(band_with_tempo_changes()))
    assert {(i.program, i.is_drum) for i in decoded.instruments} == {(0, False), (33, False), (48, False), (0, True)}
    assert decoded.get_tempo_changes()[1].tolist() == pytest.approx([120.0, 150.0, 80.0], abs=1e-4)
    untimed = BeatTokenizer(tempo=False)
    assert untimed.decode(untimed.encode(band_with_tempo_changes())).get_tempo_changes()[1].tolist() == [120.0]


def test_notes_on_the_grid_come_back_exactly():
    tokenizer = BeatTokenizer()
    original = read(score_file(3, tempi=((0, 90.0), (6, 133.0))))
    for instrument in original.instruments:  # move every note onto the sixteenth grid of its own tempo map
        for note in instrument.notes:
            note.start, note.end = (original.tick_to_time(round(original.time_to_tick(t) / 120) * 120)
                                    for t in (note.start, note.end))
        instrument.notes = [n for n in instrument.notes if n.end > n.start]
    decoded = tokenizer.decode(tokenizer.encode(original))

    def beats(midi: pretty_midi.PrettyMIDI) -> Counter:
        return Counter((i.program, i.is_drum, n.pitch, *(midi.time_to_tick(t) / midi.resolution
                                                         for t in (n.start, n.end)))
                       for i in midi.instruments for n in i.notes)

    assert beats(decoded) == beats(original)
    assert decoded.get_tempo_changes()[1].tolist() == pytest.approx([90.0, 133.0], abs=1e-4)


def test_the_same_score_at_another_tempo_encodes_identically_but_for_the_tempo_tokens():
    untimed = BeatTokenizer(tempo=False)
    slow = untimed.encode(score_file(5, tempi=((0, 90.0),)))
    assert untimed.encode(score_file(5, tempi=((0, 150.0),))) == slow
    assert untimed.encode(score_file(5, tempi=((0, 150.0), (7, 61.0), (13, 200.0)))) == slow
    tokenizer = BeatTokenizer()
    changing = tokenizer.encode(score_file(5, tempi=((0, 150.0), (7, 61.0), (13, 200.0))))
    assert grid_keys(tokenizer.decode(changing), tokenizer) == grid_keys(untimed.decode(slow), untimed)
    assert [n for n in names(tokenizer, changing) if n.startswith("TEMPO")] == ["TEMPO_150", "TEMPO_61", "TEMPO_200"]
    assert MidiTokenizer().encode(score_file(5, tempi=((0, 150.0),))) != MidiTokenizer().encode(
        score_file(5, tempi=((0, 90.0),)))


def test_a_three_four_file_has_a_bar_every_three_beats():
    tokenizer = BeatTokenizer()
    midi = one_instrument([(beat * 0.5, beat * 0.5 + 0.25) for beat in range(12)], meters=((0.0, 3, 4),))
    ids = tokenizer.encode(midi)
    assert names(tokenizer, ids[:6]) == ["METER_3/4", "BAR", "POS_0", "TEMPO_120", "PROGRAM_0", "VELOCITY_20"]
    bars = " ".join(names(tokenizer, ids)).split("BAR")[1:]
    assert len(bars) == 4
    assert all([t for t in bar.split() if t.startswith("POS")] == ["POS_0", "POS_4", "POS_8"] for bar in bars)
    decoded = tokenizer.decode(ids)
    assert [(ts.numerator, ts.denominator, ts.time) for ts in decoded.time_signature_changes] == [(3, 4, 0.0)]
    assert tokenizer.encode(decoded) == ids


def test_long_bars_are_split_and_a_meter_change_in_mid_bar_starts_a_new_bar():
    tokenizer = BeatTokenizer()
    twelve_four = one_instrument([(beat * 0.5, beat * 0.5 + 0.25) for beat in range(24)], meters=((0.0, 12, 4),))
    ids = tokenizer.encode(twelve_four)
    assert names(tokenizer, ids).count("BAR") == 4 and names(tokenizer, ids)[0] == "METER_6/4"
    changed = one_instrument([(beat * 0.5, beat * 0.5 + 0.25) for beat in range(12)],
                             meters=((0.0, 4, 4), (3.0, 3, 4)))  # 3/4 from beat 6, in the second 4/4 bar
    ids = tokenizer.encode(changed)
    assert [n for n in names(tokenizer, ids) if n.startswith(("METER", "BAR"))] == [
        "METER_4/4", "BAR", "METER_2/4", "BAR", "METER_3/4", "BAR", "BAR"]
    assert tokenizer.encode(tokenizer.decode(ids)) == ids


def test_empty_bars_are_kept_and_long_notes_are_capped():
    untimed = BeatTokenizer(tempo=False)
    ids = untimed.encode(one_instrument([(0.0, 0.5), (8.0, 60.0)]))  # bar 5 at 120 bpm, then 104 beats
    assert names(untimed, ids) == ["METER_4/4", "BAR", "POS_0", "PROGRAM_0", "VELOCITY_20", "PITCH_60", "DUR_4",
                                   "BAR", "BAR", "BAR", "BAR", "POS_0", "PITCH_60", "DUR_64"]
    tokenizer = BeatTokenizer()
    at_97 = 120 / 97.3  # the same beats at 97.3 bpm
    ids = tokenizer.encode(one_instrument([(0.0, 0.5 * at_97), (8.0 * at_97, 60.0 * at_97)], tempo=97.3))
    assert names(tokenizer, ids) == ["METER_4/4", "BAR", "POS_0", "TEMPO_97", "TEMPO_+10/32", "PROGRAM_0",
                                     "VELOCITY_20", "PITCH_60", "DUR_4", "BAR", "BAR", "BAR", "BAR", "POS_0",
                                     "PITCH_60", "DUR_64"]


def test_stretch_changes_only_the_tempi_and_transpose_moves_pitched_notes():
    """--augment stretch scales the tempo map with the notes, so beat tokens but the tempo stay as they are."""
    tokenizer, untimed = BeatTokenizer(), BeatTokenizer(tempo=False)
    score = read_score(score_file(1))
    assert untimed.encode(stretch(score, 1.37)) == untimed.encode(score)
    stretched = names(tokenizer, tokenizer.encode(stretch(score, 1.25)))
    assert [n for n in stretched if n.startswith("TEMPO")] == ["TEMPO_80", "TEMPO_112", "TEMPO_56"]

    def notes(ids: list[int], semitones: int = 0) -> Counter:
        return Counter((i.program, i.is_drum, n.pitch + (0 if i.is_drum else semitones), n.start, n.end)
                       for i in tokenizer.decode(ids).instruments for n in i.notes)

    assert notes(tokenizer.encode(transpose(score, 2))) == notes(tokenizer.encode(score), 2)


def test_bad_files_raise_the_midi_tokenizers_errors(tmp_path):
    good = score_file(0)
    inputs = {"corrupt.mid": b"MThd" + bytes(range(200)), "truncated.mid": good[: len(good) // 2],
              "silent.mid": silent_file(), "empty.mid": b""}
    for name, data in inputs.items():
        (tmp_path / name).write_bytes(data)
        for source in (tmp_path / name, data):
            with pytest.raises(InputError) as beat:
                BeatTokenizer().encode(source)
            with pytest.raises(InputError) as midi:
                MidiTokenizer().encode(source)
            assert str(beat.value) == str(midi.value) and "\n" not in str(beat.value)
    with pytest.raises(InputError, match="MIDI model needs a MIDI primer"):
        BeatTokenizer().encode("C D E F G")


def test_a_tempo_map_that_makes_too_many_bars_is_refused():
    midi = one_instrument([(7000.0, 7001.0)], tempo=1000.0)  # 116,000 beats in under two hours
    with pytest.raises(InputError, match="over 20,000 bars"):
        BeatTokenizer().encode(midi)


def test_written_samples_read_back_as_primers(tmp_path):
    tokenizer = BeatTokenizer()
    ids = tokenizer.encode(score_file(2))
    path = tmp_path / f"sample{tokenizer.output_suffix}"
    tokenizer.write(tokenizer.decode(ids), str(path))
    primer = tokenizer.read_primer(str(path))
    assert isinstance(primer, Score) and tokenizer.encode(primer) == ids


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-5, 740), max_size=300))
def test_any_id_sequence_decodes_to_a_writable_file(ids):
    assert_writable(BeatTokenizer().decode(ids))


def test_train_and_sample_a_beat_model_on_a_folder(tmp_path):
    folder = tmp_path / "scores"
    folder.mkdir()
    for seed in range(12):
        (folder / f"score{seed:02d}.mid").write_bytes(score_file(seed))
    (folder / "broken.mid").write_bytes(b"MThd" + bytes(40))
    (folder / "notes.txt").write_text("not music")
    assert len(find_documents(str(folder), "beat")) == 13
    run = tmp_path / "runs" / "beat"
    result = api.train(str(folder), tokenizer="beat", augment="transpose=-1..1,stretch=0.9..1.1", name=str(run),
                       progress=False, model={"hidden_size": 32, "num_layers": 1}, steps=30, eval_every=15,
                       batch_size=4, seq_len=32, learning_rate=1e-2, threads=1)
    assert result.progress.step == 30
    assert json.loads((run / "config.json").read_text())["data"]["skipped"] == 1
    model = api.load(run)
    assert model.tokenizer == BeatTokenizer()
    samples = model.sample(model.read_primer(folder / "score00.mid"), length=60, num_samples=2, seed=1)
    for index, sample in enumerate(samples):
        assert isinstance(sample, pretty_midi.PrettyMIDI) and sample.instruments
        assert sample.get_tempo_changes()[1][0] == pytest.approx(100, abs=1 / 64)  # the primer's TEMPO_100
        model.tokenizer.write(sample, str(tmp_path / f"sample{index}.mid"))
        assert pretty_midi.PrettyMIDI(str(tmp_path / f"sample{index}.mid")).instruments
    with pytest.raises(InputError, match="cannot prime this beat model"):
        model.read_primer(folder / "notes.txt")

