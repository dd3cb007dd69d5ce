"""The judge on pieces made here with known answers: a scale, chords with parallel fifths, tunes with short bars."""

import json
import math
import shutil
import time

import numpy as np
import pretty_midi
import pytest

from genseq.api.export import Outputs, export_samples
from genseq.corpora.sources import Document
from genseq.files import cache_dir
from genseq.judge import judge, table
from genseq.judge.chorale import chorale_counts
from genseq.judge.core import measure
from genseq.judge.features import (
    Notes,
    groove_consistency,
    ioi_beats,
    mean_abs_interval,
    note_length_histogram,
    overlap_area,
    pitch_class_entropy,
    pitch_class_histogram,
    pitch_count,
    pitch_range,
    polyphony,
    scale_consistency,
)
from genseq.judge.report import report_section
from genseq.music.bars import all_bars_full, bar_line_pattern, is_aabb_8_8, read_tune, sections
from genseq.music.score import score_from_pretty_midi
from genseq.tokenizers.abc import AbcTokenizer
from tests.helpers import ROOT, assert_one_line_error, run_cli

HEADER = "X:1\nT:test\nM:4/4\nL:1/8\nK:G\n"


def midi_of(voices, seconds_per_note=0.5, program=0):
    """A PrettyMIDI at 120 bpm (a quarter note is 0.5 s) with one instrument per voice: lists of pitches in
    quarter notes, None to hold the previous note one more quarter."""
    midi = pretty_midi.PrettyMIDI(initial_tempo=120)
    for voice in voices:
        instrument = pretty_midi.Instrument(program)
        for index, pitch in enumerate(voice):
            if pitch is None:
                instrument.notes[-1].end += seconds_per_note
            else:
                instrument.notes.append(pretty_midi.Note(90, pitch, index * seconds_per_note,
                                                         (index + 1) * seconds_per_note))
        midi.instruments.append(instrument)
    return midi


def notes_of(*voices):
    return Notes(score_from_pretty_midi(midi_of(voices)))


def test_a_c_major_scale_has_the_features_counted_by_hand():
    notes = notes_of([60, 62, 64, 65, 67, 69, 71, 72])
    assert pitch_range(notes) == 12 and pitch_count(notes) == 8
    assert mean_abs_interval(notes) == pytest.approx(12 / 7)
    assert pitch_class_entropy(notes) == pytest.approx(2.75)  # C twice, six other classes once: 0.5 + 6 * 3/8
    assert scale_consistency(notes) == 1.0
    assert pitch_class_histogram(notes)[[0, 1, 2]] == pytest.approx([2 / 8, 0, 1 / 8])
    assert note_length_histogram(notes)[2] == 1.0  # all quarter notes
    assert ioi_beats(notes) == pytest.approx(1.0)
    assert groove_consistency(notes) == 1.0  # two 4/4 bars, onsets on every beat in both
    assert polyphony(notes) == 1.0


def test_a_chromatic_line_is_not_in_any_key_and_dotted_notes_are_their_class():
    notes = notes_of(list(range(60, 72)))
    assert scale_consistency(notes) == pytest.approx(7 / 12)
    assert pitch_class_entropy(notes) == pytest.approx(math.log2(12))
    dotted = Notes(score_from_pretty_midi(midi_of([[60, 62]], seconds_per_note=0.75)))
    assert note_length_histogram(dotted)[6] == 1.0  # dotted quarter
    assert groove_consistency(notes_of([60, 62, 64, 65, 67, None, None, None])) == pytest.approx(1 - 3 / 48)


def test_a_chord_sequence_with_parallel_fifths_and_octaves():
    # bass C3-D3, tenor G3-A3 (fifth to fifth), alto E4-F4, soprano C5-D5 (octave over the bass, twice)
    notes = notes_of([72, 74], [64, 65], [55, 57], [48, 50])
    counts = chorale_counts(notes)
    assert (counts.notes, counts.parallels, counts.out_of_range, counts.crossings) == (8, 2, 0, 0)
    assert polyphony(notes) == 4.0


def test_good_voice_leading_counts_no_parallels_even_on_one_instrument():
    # C major to F major: the bass rises a fourth, the others move by step or hold their pitch
    voices = ([72, 72], [64, 65], [55, 57], [48, 53])
    merged = pretty_midi.PrettyMIDI(initial_tempo=120)
    merged.instruments.append(pretty_midi.Instrument(0))
    for instrument in midi_of(voices).instruments:
        merged.instruments[0].notes.extend(instrument.notes)
    assert chorale_counts(Notes(score_from_pretty_midi(merged))).parallels == 0


def test_out_of_range_notes_and_a_crossing_voice_are_counted():
    high = chorale_counts(notes_of([90, 72], [64, 65], [55, 57], [48, 53]))
    assert high.out_of_range == 1
    # the soprano falls below the alto while the alto holds its note
    crossed = chorale_counts(notes_of([72, 62], [67, None], [60, None], [48, None]))
    assert (crossed.four_voice_sonorities, crossed.crossings) == (2, 1)


def test_full_bars_with_a_pickup_and_a_last_bar_aside():
    tune = read_tune(HEADER + "D|GABc dedB|dedB dedB|c2ec B2dB|c2A2 A2BA|G6\n")
    assert [str(bar.length) for bar in tune.bars] == ["1/8", "1", "1", "1", "1", "3/4"]
    assert all_bars_full(tune)


def test_a_short_bar_in_the_middle_fails_the_tune():
    assert not all_bars_full(read_tune(HEADER + "GABc dedB|dedB ded|c2ec B2dB|c2A2 A2BA|G8|\n"))


def test_a_divisor_of_zero_is_read_not_raised():
    """A sampled `A/0` is not ABC; the reader must still read the tune (it divides by nothing)."""
    assert [bar.length for bar in read_tune(HEADER + "A/0Bc3 d2e|GABc dedB|\n").bars] == [1, 1]


def test_broken_rhythm_triplets_chords_and_rests_take_their_written_time():
    tune = read_tune(HEADER + "G>A B<c (3ded c2|[GB]2 z2 \"D7\"!trill!d4|{g}A/B/c d6|G8|\n")
    assert [bar.length for bar in tune.bars] == [1, 1, 1, 1]


def test_meter_changes_repeat_endings_and_essen_line_breaks_are_honoured():
    changing = read_tune(HEADER + "GABc dedB|[M:3/4]dedBAG|c2B2A2|\nM:2/4\nG2A2|B4|\n")
    assert all_bars_full(changing) and [bar.meter for bar in changing.bars][1:3] == [0.75, 0.75]
    endings = read_tune(HEADER + "|:D2|GABc dedB|dedB dedB|1 c2A2 A2:|2 c2A2 G2||\n")
    assert all_bars_full(endings) and [bar.ending for bar in endings.bars][-2:] == ["1", "2"]
    # an Essen transcription: phrase lines start with their pickup and end mid-bar or on a full bar
    essen = read_tune("X:1\nM:3/4\nL:1/8\nK:C\nG, | CB,C2D2 | B,A,G,2\nC2 | GGFEC2 | C2D2z2\nEFG2C2 | D6 |\n")
    assert all_bars_full(essen) and len(essen.bars) == 7


def test_aabb_form_of_eight_and_eight_bars():
    part = "GABc dedB|" * 7
    aabb = read_tune(HEADER + f"|:{part}G8:|\n|:{part}G8:|\n")
    assert is_aabb_8_8(aabb) and sections(aabb) == [(8, True), (8, True)]
    assert not is_aabb_8_8(read_tune(HEADER + f"|:{part}G8:|\n|:GABc dedB|G8:|\n"))
    with_endings = read_tune(HEADER + f"|:{part}G8:|\n|:{part[:-1]}|1 G8:|2 g8|]\n")
    assert is_aabb_8_8(with_endings)
    assert bar_line_pattern(read_tune(HEADER + "|:GABc dedB|G8:|\n")) == "|: | :|"


def test_copying_finds_four_bars_of_a_training_tune(tmp_path):
    training = tmp_path / "train.abc"
    training.write_text(HEADER + "GABc dedB|dedB dedB|c2ec B2dB|c2A2 A2BA|G8|]\n")
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "copy.abc").write_text(HEADER + "E8|GABc dedB|dedB dedB|c2ec B2dB|c2A2 A2BA|E8|]\n")
    (tmp_path / "samples" / "own.abc").write_text(HEADER + "E8|GABc dedB|dedB dedB|c2ec B2dB|E8|]\n")
    reference = tmp_path / "reference"
    reference.mkdir()
    for index, bar in enumerate(["GABc dedB", "dedB dedB", "c2ec B2dB", "c2A2 A2BA", "ABcd e4"]):
        (reference / f"{index}.abc").write_text(HEADER + f"{bar}|{bar}|G8|{bar}|]\n")
    result = judge(tmp_path / "samples", reference, training=training)
    assert result["copying"].samples == 0.5 and result["validity"].samples == 1.0
    assert result["pieces"].samples == 2 and result["pieces"].reference == 5


def test_meter_and_key_histograms_count_each_spelling_once_and_overlap_by_shared_share(tmp_path):
    body = "GABc dedB|dedB dedB|c2ec B2dB|c2A2 A2BA|G8|]\n"
    headers = {"samples": [("6/8", "G major"), ("6/8", "Gmaj"), ("4/4", "Ador"), ("4/4", "A dorian")],
               "reference": [("6/8", "G"), ("6/8", "G"), ("6/8", "G"), ("6/8", "D"), ("4/4", "Ador")]}
    for folder, tunes in headers.items():
        (tmp_path / folder).mkdir()
        for index, (meter, key) in enumerate(tunes):
            (tmp_path / folder / f"{index}.abc").write_text(f"X:1\nM:{meter}\nL:1/8\nK:{key}\n{body}")
    result = judge(tmp_path / "samples", tmp_path / "reference")
    # samples: 6/8 and 4/4 half each; reference: 6/8 4/5, 4/4 1/5 -> overlap 1/2 + 1/5
    assert result["meter"].samples == pytest.approx(0.5 + 0.2)
    # samples: G 1/2, Ador 1/2; reference: G 3/5, D 1/5, Ador 1/5 -> 1/2 + 1/5
    assert result["key"].samples == pytest.approx(0.5 + 0.2)
    assert result["meter"].ceiling is not None and 0 <= result["meter"].ceiling <= 1


def test_overlapping_area_is_one_for_one_distribution_and_near_zero_for_two_apart():
    rng = np.random.default_rng(1)
    same = overlap_area(rng.normal(0, 1, 2000), rng.normal(0, 1, 2000))
    apart = overlap_area(rng.normal(0, 1, 2000), rng.normal(20, 1, 2000))
    assert same > 0.95 and apart < 0.01
    assert overlap_area(np.zeros(10), np.zeros(10)) == pytest.approx(1.0, abs=0.01)  # all distances equal


def _scipy_overlap_area(first, second, points=2048):
    """The overlapping area as the judge computed it with scipy (gaussian_kde's defaults, scipy's trapezoid)."""
    stats, integrate = pytest.importorskip("scipy.stats"), pytest.importorskip("scipy.integrate")
    low, high = min(first.min(), second.min()), max(first.max(), second.max())
    spread = max(high - low, 1e-6)
    grid = np.linspace(low - 0.25 * spread, high + 0.25 * spread, points)
    smaller = np.minimum(stats.gaussian_kde(first)(grid), stats.gaussian_kde(second)(grid))
    return float(np.clip(integrate.trapezoid(smaller, grid), 0.0, 1.0))


def test_the_numpy_kde_gives_scipys_overlapping_areas(tmp_path):
    """The judge's KDE is scipy.stats.gaussian_kde's default (Scott's rule) in numpy, so its figures are the
    ones it gave with scipy: on normal samples of several sizes and on the distances of real chorale samples."""
    rng = np.random.default_rng(3)
    for size in (5, 200, 3000):
        first, second = rng.normal(0, 1, size), rng.gamma(2, 1, size)
        assert overlap_area(first, second) == pytest.approx(_scipy_overlap_area(first, second), abs=1e-9)
    chorales = sorted((ROOT / "examples" / "bach-chorales").glob("*.mid"))
    for folder, files in (("samples", chorales[:3]), ("reference", chorales[3:])):
        (tmp_path / folder).mkdir()
        for file in files:
            shutil.copy(file, tmp_path / folder)
    result = judge(tmp_path / "samples", tmp_path / "reference")
    assert len(result.distances) >= 8
    for name, sets in result.distances.items():
        intra, across = sets.values()
        assert result[name].samples == pytest.approx(_scipy_overlap_area(intra, across), abs=1e-9), name


def test_a_builtin_reference_is_measured_once_then_read_from_the_cache(tmp_path):
    """A report page judges against its model's corpus every time: the reference's statistics and the training
    split's copy keys are cached under genseq's cache, and the cached judgement is the same."""
    (tmp_path / "sample.abc").write_text(HEADER + "GABc dedc|BAGF GABc|" * 4 + "\n")
    folder = cache_dir() / "judge"
    before = set(folder.iterdir()) if folder.exists() else set()  # other tests may have judged against corpora
    first = judge(tmp_path / "sample.abc", "folk-abc", max_reference=6)
    assert sorted(p.name.split("-")[0] for p in set(folder.iterdir()) - before) == ["reference", "training"]
    started = time.perf_counter()
    assert judge(tmp_path / "sample.abc", "folk-abc", max_reference=6).to_dict() == first.to_dict()
    assert time.perf_counter() - started < 5.0  # measuring took 15 s: the split's copy keys alone
    judge(tmp_path / "sample.abc", "folk-abc", max_reference=7)  # another subset is measured and cached anew
    assert len(set(folder.glob("reference-*")) - before) == 2


def test_midi_sets_get_chorale_figures_and_a_ceiling(tmp_path):
    for folder, voices in (("samples", ([72, 74], [64, 65], [55, 57], [48, 50])),
                           ("reference", ([72, 72], [64, 65], [55, 57], [48, 53]))):
        (tmp_path / folder).mkdir()
        for index in range(6):
            midi_of([[p + index for p in voice] for voice in voices]).write(str(tmp_path / folder / f"{index}.mid"))
    result = judge(tmp_path / "samples", tmp_path / "reference")
    assert result["parallels"].samples == pytest.approx(0.25) and result["parallels"].reference == 0
    assert result["parallels"].ceiling == 0 and result["out_of_range"].samples == 0
    assert 0 <= result["pitch_range"].samples <= 1 and result["polyphony"].ceiling is not None
    assert "copying" not in result.to_dict()  # no training pieces named
    assert "parallel fifths and octaves per note" in table(result)


def test_an_abc_sample_music21_cannot_read_is_invalid_but_its_bars_still_count():
    stats = measure("abc", "broken", HEADER + "GABc dedB|dedB dedB|c2ec B2dB|[[[|\n")
    assert not stats.valid and stats.tune is not None and stats.features is None


@pytest.mark.slow
def test_cli_prints_one_json_object_and_writes_histograms(tmp_path):
    for folder, shift in (("samples", 0), ("reference", 2)):
        (tmp_path / folder).mkdir()
        for index in range(5):
            notes = "GABc dedB|dedB dedB|c2ec B2dB|c2A2 A2BA|"[index * 2:] + "G8|]"
            (tmp_path / folder / f"{index}.abc").write_text(HEADER.replace("K:G", "K:D" if shift else "K:G") + notes)
    out = run_cli("judge", str(tmp_path / "samples"), "--reference", str(tmp_path / "reference"), "--json",
                  "--png-dir", str(tmp_path / "png"))
    assert out.returncode == 0, out.stderr
    figures = json.loads(out.stdout)
    assert {"validity", "full_bars", "aabb", "bar_line_patterns", "pitch_class_histogram", "ioi_beats"} <= set(figures)
    assert set(figures["full_bars"]) == {"label", "samples", "reference", "ceiling"}
    assert (tmp_path / "png" / "pitch_class_histogram.png").stat().st_size > 1000


def test_cli_refuses_samples_and_reference_of_different_kinds(tmp_path):
    (tmp_path / "tune.abc").write_text(HEADER + "GABc dedB|G8|]\n")
    midi_of([[60, 62]]).write(str(tmp_path / "piece.mid"))
    assert_one_line_error(run_cli("judge", str(tmp_path / "tune.abc"), "--reference", str(tmp_path / "piece.mid")),
                          "the samples are ABC but the reference is MIDI")


def test_the_report_page_shows_the_judge_table_and_says_why_when_it_cannot(tmp_path):
    reference = tmp_path / "reference"
    reference.mkdir()
    for index in range(5):
        (reference / f"{index}.abc").write_text(HEADER + "GABc dedB|dedB dedB|c2ec B2dB|"[index:] + "G8|]\n")
    tune = HEADER + "GABc dedB|dedB dedB|c2ec B2dB|c2A2 A2BA|G8|]\n"
    tokenizer = AbcTokenizer(set(tune))
    written = export_samples([tune], tokenizer, tmp_path / "out", Outputs(report=True, judge_reference=str(reference)),
                             {})
    page = written.report.read_text()
    assert "judge: 1 samples against" in page and "every bar full (first and last aside)" in page
    assert "not judged: " in report_section([Document("x", text=tune)], str(tmp_path / "nothing-here"))
