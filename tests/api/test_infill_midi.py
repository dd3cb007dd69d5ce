"""Infilling with MIDI models (performance events, the beat grid) trained for seconds on four-instrument pieces with
tempo and meter changes: the rest of the piece unchanged note for note, the fill inside its span in the piece's own
instruments, spans at the start and the end, bars and seconds, bad spans refused before anything is drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from genseq import api
from genseq.api.infill import span_option
from genseq.api.infill_midi import find_time_span, led_context
from genseq.api.model import TrainedModel
from genseq.errors import InputError
from genseq.music.score import read_score
from genseq.rules.infill_midi import clock_for, times
from tests.tokenizers.test_beat import score_file

KINDS = ("beat", "midi")


@pytest.fixture(scope="module")
def pieces(tmp_path_factory) -> Path:
    """Twelve pieces: four instruments (drums among them), 4/4 turning 3/4 at beat 16, tempo changes at beats 8
    and 20."""
    folder = tmp_path_factory.mktemp("midi-pieces")
    for seed in range(12):
        (folder / f"score{seed:02d}.mid").write_bytes(score_file(seed))
    return folder


@pytest.fixture(scope="module", params=KINDS)
def model(request, pieces, tmp_path_factory) -> TrainedModel:
    """A small model of each MIDI kind, trained long enough to move time as the pieces do."""
    run = tmp_path_factory.mktemp("runs") / request.param
    api.train(str(pieces), tokenizer=request.param, name=str(run), progress=False,
              model={"hidden_size": 32, "num_layers": 1}, steps=60, eval_every=1000, batch_size=4, seq_len=64,
              learning_rate=1e-2, threads=1)
    return api.load(run)


def notes_by_track(midi: pretty_midi.PrettyMIDI) -> list[tuple[tuple[int, bool], set[tuple[int, float, float, int]]]]:
    return [((track.program, track.is_drum), {(n.pitch, n.start, n.end, n.velocity) for n in track.notes})
            for track in midi.instruments]


def assert_filled(model: TrainedModel, piece: Path, span: str, unit: str, versions: list) -> None:
    """Every version keeps each note that does not start in the span exactly (time, length, velocity, track) and
    the tempo map and meters; its new notes start inside the span, end by its end, in the piece's instruments."""
    original = pretty_midi.PrettyMIDI(str(piece))
    score = read_score(piece)
    found = find_time_span(model.tokenizer, score, span, unit)
    start, end = model.tokenizer.step_seconds(score, [found.start, found.end]).tolist()
    outside = [(key, {n for n in notes if not found.start <= model.tokenizer.time_steps(score, [n[1]])[0] < found.end})
               for key, notes in notes_by_track(original)]
    for version in versions:
        assert isinstance(version, pretty_midi.PrettyMIDI)
        assert np.allclose(version.get_tempo_changes()[1], original.get_tempo_changes()[1])
        assert [(s.numerator, s.denominator) for s in version.time_signature_changes] == \
            [(s.numerator, s.denominator) for s in original.time_signature_changes]
        tracks = notes_by_track(version)
        assert [key for key, _ in tracks] == [key for key, _ in outside]
        for (key, kept), (_, notes) in zip(outside, tracks, strict=True):
            assert kept <= notes, key
            assert all(start - 1e-6 <= onset < end and off <= end + 1e-6 for _, onset, off, _ in notes - kept)


@pytest.mark.parametrize(("span", "unit"), [("3-4", "bars"), ("1-2", "bars"), ("9-10", "bars"),
                                            ("3.3-7.9", "seconds"), ("0-2.5", "seconds")])
def test_a_fill_stays_in_its_span_and_the_rest_is_unchanged_note_for_note(model, pieces, span, unit):
    piece = pieces / "score00.mid"
    versions = model.infill(piece, span, candidates=4, unit=unit, num_samples=2, seed=1)
    assert len(versions) == 2
    assert_filled(model, piece, span, unit, versions)
    drawn = [sorted((n.pitch, n.start) for track in version.instruments for n in track.notes) for version in versions]
    assert drawn[0] != drawn[1]  # two fills, not one


def test_the_span_at_the_end_of_a_piece(model, pieces):
    piece = pieces / "score01.mid"
    bars = len(read_score(piece).bar_lines()) - 1
    versions = model.infill(piece, f"{bars - 1}-{bars}", candidates=3, seed=2)
    assert_filled(model, piece, f"{bars - 1}-{bars}", "bars", versions)


def test_the_context_is_led_to_the_first_step_of_the_span(model, pieces):
    """A fill starts where its span does: mid-bar on the grid (a position), or after a shift cut short."""
    score = read_score(pieces / "score02.mid")
    for span, unit in (("5-7", "bars"), ("3.3-7.9", "seconds")):
        found = find_time_span(model.tokenizer, score, span, unit)
        ids = model.tokenizer.encode(score)
        led = led_context(model.tokenizer, score, ids, found)
        clock = clock_for(model.tokenizer)
        assert times(clock, led)[-1] == found.start
        kept = next(i for i, time in enumerate(times(clock, ids)) if time >= found.start)
        assert led[:kept] == ids[:kept]


def test_bars_count_from_the_start_of_the_file_by_its_time_signatures(model, pieces):
    """4/4 for 16 beats at 100 and 140 bpm, then 3/4: bar 5 starts at beat 16, bar 6 at beat 19."""
    score = read_score(pieces / "score00.mid")
    lines = score.bar_lines()
    assert lines[:7] == pytest.approx([0.0, 2.4, 4.8, 4.8 + 4 * 60 / 140, 4.8 + 8 * 60 / 140, 4.8 + 11 * 60 / 140,
                                       4.8 + 12 * 60 / 140 + 2 * 60 / 70])
    found = find_time_span(model.tokenizer, score, "6", "bars")
    assert model.tokenizer.step_seconds(score, [found.start, found.end]) == pytest.approx(lines[5:7], abs=0.006)


@pytest.mark.parametrize(("span", "unit", "message"), [
    ("20-24", "bars", "--bars 20-24 lies outside the piece, which has"),
    ("6-5", "bars", "--bars 6-5 is empty"),
    ("0-40", "seconds", "lies outside the piece, which lasts"),
    ("8-3", "seconds", "--seconds 8-3 is empty"),
    ("3-3.001", "seconds", "shorter than one step"),
    ("soon", "seconds", "is not a span of time"),
    ("0-19.9", "seconds", "holds every note of the piece"),
])
def test_bad_spans_are_one_line_errors(model, pieces, span, unit, message):
    with pytest.raises(InputError, match=message) as error:
        model.infill(pieces / "score00.mid", span, unit=unit)
    assert "\n" not in str(error.value)


def test_a_grid_span_across_a_change_of_meter_is_refused(pieces, model):
    if model.tokenizer.kind != "beat":
        pytest.skip("only the beat grid writes the meter; a performance model has none to keep")
    with pytest.raises(InputError, match="crosses a change of meter at 8.23 s"):
        model.infill(pieces / "score00.mid", "4-5")


def test_spans_a_midi_model_does_not_draw_are_refused():
    assert span_option("beat", seconds="12-20") == ("12-20", "seconds")
    assert span_option("midi", bars="5-8") == ("5-8", "bars")
    with pytest.raises(InputError, match="--beats is not for MIDI performances; .* give --bars 5-8 or --seconds 12-20"):
        span_option("midi", beats="9-16")
    with pytest.raises(InputError, match="--seconds is not for chorales"):
        span_option("voices", seconds="1-2")
    with pytest.raises(InputError, match="give one span, not --bars and --seconds"):
        span_option("beat", bars="1-2", seconds="1-2")


def test_text_for_a_midi_model_is_a_one_line_error(model):
    with pytest.raises(InputError, match="give the path of a .mid file, not text"):
        model.infill("X:1\nM:4/4\nK:C\nCDEF|\n", "1")


def test_voices_that_share_an_instrument_get_the_new_notes_nearest_their_register(model):
    """BWV 336's four voices are one instrument to a MIDI model: each new note goes to the voice whose notes lie
    nearest its pitch."""
    from tests.api.test_infill_voices import CHORALE

    original = pretty_midi.PrettyMIDI(str(CHORALE))
    assert len({(track.program, track.is_drum) for track in original.instruments}) == 1
    registers = [float(np.median([n.pitch for n in track.notes])) for track in original.instruments]
    assert registers == sorted(registers, reverse=True)  # soprano to bass
    (version,) = model.infill(CHORALE, "3-4", candidates=2, seed=3)
    assert_filled(model, CHORALE, "3-4", "bars", [version])
    new = [{(n.pitch, n.start) for n in track.notes if 4 <= n.start < 8} for track in version.instruments]
    assert sum(map(len, new)) > 0
    for voice, notes in enumerate(new):
        for pitch, _ in notes:
            assert min(range(4), key=lambda v: abs(registers[v] - pitch)) == voice
