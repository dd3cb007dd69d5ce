"""The voices tokenizer: every voice's note at every grid step, round trips on real chorales, training on it."""

from __future__ import annotations

import io
import json

import pretty_midi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genseq import api
from genseq.errors import ConfigError, InputError
from genseq.tokenizers import VoicesTokenizer, reads_midi, tokenizer_from_dict
from tests.helpers import assert_writable, chorale_bytes, read, run_cli

SATB = ["Soprano", "Alto", "Tenor", "Bass"]
STEP = 0.125
"""Seconds in a sixteenth at 120 bpm, the grid step of the default tokenizer."""


def four_parts(parts: dict[str, list[tuple[int, int, int]]], meters: tuple[tuple[float, int, int], ...] = ((0, 4, 4),),
               programs: tuple[int, ...] = (0, 0, 0, 0), drums: bool = False) -> pretty_midi.PrettyMIDI:
    """A 120 bpm file with one track per named part, notes as (pitch, onset step, end step) of sixteenths."""
    midi = pretty_midi.PrettyMIDI(initial_tempo=120)
    midi.time_signature_changes = [pretty_midi.TimeSignature(n, d, t) for t, n, d in meters]
    for (name, notes), program in zip(parts.items(), programs, strict=True):
        track = pretty_midi.Instrument(program=program, name=name)
        track.notes = [pretty_midi.Note(80, pitch, start * STEP, end * STEP) for pitch, start, end in notes]
        midi.instruments.append(track)
    if drums:
        kit = pretty_midi.Instrument(program=0, is_drum=True, name="Drums")
        kit.notes = [pretty_midi.Note(80, 36, step * STEP, (step + 1) * STEP) for step in range(0, 16, 4)]
        midi.instruments.append(kit)
    return midi


def voice_notes(midi: pretty_midi.PrettyMIDI) -> dict[str, list[tuple[int, int, int]]]:
    """(pitch, onset step, end step) of each named track's notes."""
    return {track.name: [(n.pitch, round(n.start / STEP), round(n.end / STEP)) for n in track.notes]
            for track in midi.instruments}


HYMN = {  # a bar of 4/4 and a bar of 3/4 with a rest, a tie over the bar line and a sixteenth
    "Alto": [(64, 0, 8), (62, 8, 16), (64, 16, 28)],
    "Bass": [(48, 0, 4), (43, 4, 8), (47, 8, 10), (48, 10, 16), (45, 16, 24)],
    "Soprano": [(72, 0, 4), (71, 4, 6), (69, 6, 7), (71, 7, 8), (72, 8, 20), (74, 20, 28)],
    "Tenor": [(55, 0, 16), (57, 20, 28)],
}


@pytest.fixture(scope="module")
def choir_and_band(chorales) -> list[bytes]:
    """bwv66.6 and bwv7.7, then bwv79.6, which has horns and timpani beside the choir."""
    return chorales[:2] + chorale_bytes(("bwv79.6",))


def test_vocabulary_is_fixed_and_named():
    tokenizer = VoicesTokenizer()
    every = [tokenizer.token_name(i) for i in range(tokenizer.vocab_size)]
    assert tokenizer.vocab_size == 3 + 1 + 32 + 128 + 1 + 1 == 166 and len(set(every)) == len(every)
    assert every[:5] == ["<pad>", "<eod>", "<unk>", "BAR", "METER_1/16"]
    assert {"METER_3/4", "METER_4/4", "PITCH_0", "PITCH_127"} <= set(every) and every[-2:] == ["HOLD", "REST"]


def test_settings_round_trip_through_to_dict_and_bad_ones_are_refused():
    tokenizer = VoicesTokenizer(voices=3, steps_per_beat=2, max_bar_beats=6)
    assert tokenizer.to_dict() == {"kind": "voices", "voices": 3, "steps_per_beat": 2, "max_bar_beats": 6}
    assert tokenizer_from_dict(tokenizer.to_dict()) == tokenizer != VoicesTokenizer()
    assert tokenizer.vocab_size == 3 + 1 + 12 + 128 + 2
    assert reads_midi("voices") and VoicesTokenizer.output_suffix == ".mid"
    with pytest.raises(ConfigError, match="voices=0"):
        VoicesTokenizer(voices=0)


def test_a_four_part_score_on_the_grid_comes_back_exactly():
    """Tracks in any order are the voices their names say; bars, meters, rests and ties come back as they were."""
    tokenizer = VoicesTokenizer()
    ids = tokenizer.encode(four_parts(HYMN, meters=((0, 4, 4), (2.0, 3, 4))))
    names = [tokenizer.token_name(i) for i in ids]
    assert names[:10] == ["METER_4/4", "BAR", "PITCH_72", "PITCH_64", "PITCH_55", "PITCH_48",
                          "HOLD", "HOLD", "HOLD", "HOLD"]
    second = names.index("METER_3/4")
    assert second == 2 + 16 * 4 and names[second + 1] == "BAR" and len(names) == second + 2 + 12 * 4
    assert names[second + 2:second + 6] == ["HOLD", "PITCH_64", "REST", "PITCH_45"]  # the soprano's tie
    decoded = tokenizer.decode(ids)
    assert [track.name for track in decoded.instruments] == SATB
    assert voice_notes(decoded) == {name: HYMN[name] for name in SATB}
    assert [(ts.numerator, ts.denominator, ts.time) for ts in decoded.time_signature_changes] == [(4, 4, 0), (3, 4, 2)]
    assert tokenizer.encode(decoded) == ids and tokenizer.kept_notes(four_parts(HYMN), decoded) == (16, 16)


def test_unnamed_tracks_are_voices_by_mean_pitch_and_drums_are_no_voice():
    parts = {"": [(40, 0, 4)], "Flute": [(80, 0, 4)], "Viola": [(55, 0, 4)], "Cello": [(50, 0, 2), (70, 2, 4)]}
    tokenizer = VoicesTokenizer()
    decoded = tokenizer.decode(tokenizer.encode(four_parts(parts, programs=(32, 73, 41, 42), drums=True)))
    assert voice_notes(decoded) == {"Soprano": [(80, 0, 4)], "Alto": [(50, 0, 2), (70, 2, 4)],
                                    "Tenor": [(55, 0, 4)], "Bass": [(40, 0, 4)]}
    assert all(track.program == 0 for track in decoded.instruments)


def test_a_voice_sounds_one_note_at_a_time():
    """A note ends at the voice's next onset; of notes starting together the highest stays; a short note is a step."""
    parts = {"Soprano": [(72, 0, 8), (76, 0, 2), (74, 4, 6), (79, 10, 10.2)], "Alto": [(60, 0, 16)],
             "Tenor": [(55, 0, 16)], "Bass": [(48, 0, 16)]}
    tokenizer = VoicesTokenizer()
    decoded = tokenizer.decode(tokenizer.encode(four_parts(parts)))
    assert voice_notes(decoded)["Soprano"] == [(76, 0, 2), (74, 4, 6), (79, 10, 11)]


def test_files_without_four_voices_are_refused_with_the_tracks_named():
    three = {"Soprano": [(72, 0, 4)], "Alto": [(64, 0, 4)], "Bass": [(48, 0, 4)]}
    with pytest.raises(InputError, match=r"3 track\(s\) \(Soprano, Alto, Bass\); the voices tokenizer needs 4"):
        VoicesTokenizer().encode(four_parts(three, programs=(0, 0, 0)))
    trio = VoicesTokenizer(voices=3)
    assert voice_notes(trio.decode(trio.encode(four_parts(three, programs=(0, 0, 0))))) == {
        "Voice 1": [(72, 0, 4)], "Voice 2": [(64, 0, 4)], "Voice 3": [(48, 0, 4)]}


def test_decoding_fills_frames_in_voice_order_and_ignores_what_breaks_them():
    tokenizer = VoicesTokenizer()
    token = {tokenizer.token_name(i): i for i in range(tokenizer.vocab_size)}
    ids = [token[name] for name in (
        "HOLD", "PITCH_64", "PITCH_55", "BAR", "PITCH_48",  # a HOLD at the start is a rest; a BAR in mid-frame
        "PITCH_72", "HOLD", "HOLD", "HOLD",
        "REST", "HOLD", "REST", "HOLD",
        "HOLD", "HOLD", "HOLD", "PITCH_50",  # the soprano's HOLD after a REST is a rest too
        "PITCH_90", "PITCH_91")]  # an incomplete last frame
    assert voice_notes(tokenizer.decode(ids)) == {"Soprano": [(72, 1, 2)], "Alto": [(64, 0, 4)],
                                                  "Tenor": [(55, 0, 2)], "Bass": [(48, 0, 3), (50, 3, 4)]}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-5, 170), max_size=400))
def test_any_id_sequence_decodes_to_four_named_voices_in_a_writable_file(ids):
    decoded = VoicesTokenizer().decode(ids)
    assert [track.name for track in decoded.instruments] == SATB
    assert_writable(decoded)


def test_chorales_come_back_within_half_a_step_and_other_instruments_are_left_out(choir_and_band):
    tokenizer = VoicesTokenizer()
    kept = total = choir = 0
    for data in choir_and_band:
        decoded = tokenizer.decode(tokenizer.encode(data))
        assert [track.name for track in decoded.instruments] == SATB
        got, notes = tokenizer.kept_notes(data, decoded)
        kept, total = kept + got, total + notes
        choir += sum(len(track.notes) for track in read(data).instruments if track.name in SATB)
        buffer = io.BytesIO()
        decoded.write(buffer)
        assert tokenizer.encode(buffer.getvalue()) == tokenizer.encode(decoded)
    print(f"{kept}/{choir} choir notes kept ({kept / choir:.2%}), of {total} notes in all")
    assert kept / choir >= 0.99 and choir < total  # bwv79.6's horns and timpani are no voice


def test_training_skips_and_counts_a_file_without_four_voices_and_samples_four_voices(tmp_path, choir_and_band):
    folder = tmp_path / "chorales"
    folder.mkdir()
    for index, data in enumerate(choir_and_band):
        (folder / f"chorale{index}.mid").write_bytes(data)
    three = {"Soprano": [(72, 0, 4)], "Alto": [(64, 0, 4)], "Bass": [(48, 0, 4)]}
    four_parts(three, programs=(0, 0, 0)).write(str(folder / "trio.mid"))
    run = tmp_path / "runs" / "voices"
    result = api.train(str(folder), tokenizer="voices", augment="transpose=-5..6", name=str(run), progress=False,
                       model={"hidden_size": 32, "num_layers": 1}, steps=20, eval_every=10, batch_size=4,
                       seq_len=32, learning_rate=1e-2, threads=1, val_fraction=0.25)  # seed 0 holds out chorale2
    assert result.progress.step == 20
    data = json.loads((run / "config.json").read_text())["data"]
    assert data["skipped"] == 1 and data["documents"] == 4
    model = api.load(run)
    assert model.tokenizer == VoicesTokenizer() and model.info()["tokenizer"] == "voices"
    for index, sample in enumerate(model.sample(model.read_primer(folder / "chorale0.mid"), length=200,
                                                num_samples=2, seed=1)):
        assert [track.name for track in sample.instruments] == SATB
        model.tokenizer.write(sample, str(tmp_path / f"sample{index}.mid"))
        assert read((tmp_path / f"sample{index}.mid").read_bytes()).instruments


def test_encode_round_trips_a_folder_and_counts_the_skipped_file(tmp_path, choir_and_band):
    folder = tmp_path / "chorales"
    folder.mkdir()
    (folder / "bwv66.6.mid").write_bytes(choir_and_band[0])
    four_parts({"Soprano": [(72, 0, 4)], "Bass": [(48, 0, 4)]}, programs=(0, 0)).write(str(folder / "duo.mid"))
    result = run_cli("encode", str(folder), "--tokenizer", "voices", "--roundtrip-dir", str(tmp_path / "rt"))
    assert result.returncode == 0, result.stderr
    assert "skipped 1 file(s) of 2 that could not be read or encoded" in " ".join(result.stderr.split())
    assert "METER_4/4" in result.stdout and "in all: 100.00% of notes kept" in result.stdout
    assert [t.name for t in pretty_midi.PrettyMIDI(str(tmp_path / "rt" / "bwv66.6.mid")).instruments] == SATB
