"""`genseq infill`: the shipped models refill a span of a file, written as `genseq sample` writes samples; bad spans
are one-line errors."""

from __future__ import annotations

import json

import pytest

from genseq.music.spans import bar_span
from tests.api.test_infill import JIG, TEXT
from tests.helpers import assert_one_line_error, run_cli


@pytest.fixture
def jig(tmp_path):
    path = tmp_path / "jig.abc"
    path.write_text(JIG, encoding="utf-8")
    return path


def test_abc_versions_are_written_as_samples_are(jig, tmp_path):
    out = tmp_path / "out"
    result = run_cli("infill", "folk-abc-small", str(jig), "--bars", "4-7", "--num-samples", "2", "--candidates",
                     "2", "--seed", "1", "--output-dir", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    span = bar_span(JIG, 4, 7)
    for name in ("sample-01", "sample-02"):
        version = (out / f"{name}.abc").read_text(encoding="utf-8")
        assert version.startswith(JIG[:span.start]) and version.endswith(JIG[span.end:])
        assert (out / f"{name}.mid").exists() and name in result.stdout


def test_a_refilled_tunes_score_keeps_its_title(tmp_path):
    """The piece is the user's: its score is titled as the tune is, not as a sample ("genseq tune 1")."""
    tune = tmp_path / "titled.abc"
    tune.write_text(JIG.replace("X:1\n", "X:1\nT:The Kesh\n"), encoding="utf-8")
    out = tmp_path / "out"
    result = run_cli("infill", "folk-abc-small", str(tune), "--bars", "5-8", "--candidates", "2", "--seed", "1",
                     "--output-dir", str(out), "--score", "--quiet")
    assert result.returncode == 0, result.stderr
    score = (out / "sample-01.svg").read_text(encoding="utf-8")
    assert "The Kesh" in score and "genseq tune" not in score


def test_a_text_version_is_printed(tmp_path):
    text = tmp_path / "scene.txt"
    text.write_text(TEXT, encoding="utf-8")
    result = run_cli("infill", "shakespeare-small", str(text), "--chars", "20-60", "--candidates", "2", "--seed", "1",
                     "--json")
    assert result.returncode == 0, result.stderr
    (version,) = json.loads(result.stdout)
    assert version[:19] == TEXT[:19] and version[60:] == TEXT[60:] and len(version) == len(TEXT)


@pytest.mark.parametrize(("args", "fragments"), [
    (["--bars", "20-24"], ["--bars 20-24 lies outside the tune, which has 16 bars"]),
    (["--bars", "6-5"], ["--bars 6-5 is empty"]),
    (["--bars", "1-16"], ["--bars 1-16 is the whole tune"]),
    (["--bars", "8-9"], ["bar 8 is not a full bar"]),
    (["--chars", "1-5"], ["--chars is not for ABC tunes", "--bars 5-8"]),
    ([], ["name the bars to draw again"]),
])
def test_bad_spans_are_one_line_errors(jig, args, fragments):
    assert_one_line_error(run_cli("infill", "folk-abc-small", str(jig), *args), *fragments)


def test_a_text_without_a_marker_or_a_span_is_a_one_line_error(tmp_path):
    text = tmp_path / "scene.txt"
    text.write_text(TEXT, encoding="utf-8")
    assert_one_line_error(run_cli("infill", "shakespeare-small", str(text)), "holds 0 [...] markers", "--chars")
    assert_one_line_error(run_cli("infill", "shakespeare-small", str(text), "--chars", "0-500"), "outside the text")
    assert_one_line_error(run_cli("infill", "shakespeare-small", str(tmp_path / "none.txt"), "--chars", "1-2"),
                          "no such file")


def test_chorale_versions_are_written_as_midi_with_piano_rolls(tmp_path):
    import pretty_midi

    from tests.api.test_infill_voices import CHORALE, voice_notes

    out = tmp_path / "out"
    result = run_cli("infill", "bach-chorales-small", str(CHORALE), "--beats", "9-16", "--voices", "alto,tenor",
                     "--candidates", "2", "--seed", "1", "--output-dir", str(out), "--png", "--quiet")
    assert result.returncode == 0, result.stderr
    assert (out / "sample-01.mid").exists() and (out / "sample-01.png").exists() and "sample-01" in result.stdout
    original, version = (voice_notes(pretty_midi.PrettyMIDI(str(path))) for path in (CHORALE, out / "sample-01.mid"))
    assert version[0] == original[0] and version[3] == original[3]  # soprano and bass kept


@pytest.mark.parametrize(("args", "fragments"), [
    (["--beats", "30-40"], ["--beats 30-40 lies outside the piece, which has 32 beats"]),
    (["--beats", "1-32"], ["--beats 1-32 is the whole piece"]),
    (["--beats", "9-16", "--voices", "alto,viola"], ["'viola' is not a voice of this model", "soprano, alto"]),
    (["--bars", "5-8"], ["--bars is not for chorales", "--beats 9-16"]),
    (["--beats", "9-16"], ["give --output-dir DIR"]),
])
def test_bad_chorale_spans_are_one_line_errors(tmp_path, args, fragments):
    from tests.api.test_infill_voices import CHORALE

    extra = [] if args == ["--beats", "9-16"] else ["--output-dir", str(tmp_path / "out")]
    assert_one_line_error(run_cli("infill", "bach-chorales-small", str(CHORALE), *args, *extra), *fragments)


def test_beats_to_an_abc_model_is_a_one_line_error(jig):
    assert_one_line_error(run_cli("infill", "folk-abc-small", str(jig), "--beats", "9-16"),
                          "--beats is not for ABC tunes", "--bars 5-8")


@pytest.fixture(scope="module")
def beat_run(tmp_path_factory):
    """A beat-grid model trained for seconds on pieces of four instruments, and one of its pieces."""
    from genseq import api
    from tests.tokenizers.test_beat import score_file

    folder = tmp_path_factory.mktemp("pieces")
    for seed in range(8):
        (folder / f"score{seed:02d}.mid").write_bytes(score_file(seed))
    run = tmp_path_factory.mktemp("runs") / "beat"
    api.train(str(folder), tokenizer="beat", name=str(run), progress=False, model={"hidden_size": 32, "num_layers": 1},
              steps=60, eval_every=1000, batch_size=4, seq_len=64, learning_rate=1e-2, threads=1)
    return run, folder / "score00.mid"


@pytest.mark.parametrize("span", [["--bars", "5-7"], ["--seconds", "3.3-7.9"]])
def test_midi_versions_are_written_with_piano_rolls(beat_run, tmp_path, span):
    import pretty_midi

    run, piece = beat_run
    out = tmp_path / "out"
    result = run_cli("infill", str(run), str(piece), *span, "--num-samples", "2", "--candidates", "2", "--seed", "1",
                     "--output-dir", str(out), "--png", "--quiet")
    assert result.returncode == 0, result.stderr
    original = pretty_midi.PrettyMIDI(str(piece))
    for name in ("sample-01", "sample-02"):
        version = pretty_midi.PrettyMIDI(str(out / f"{name}.mid"))
        assert (out / f"{name}.png").exists()
        assert [i.program for i in version.instruments] == [i.program for i in original.instruments]
        after = [(n.pitch, round(n.start, 3)) for n in original.instruments[0].notes if n.start > 15]
        assert after and after == [(n.pitch, round(n.start, 3)) for n in version.instruments[0].notes if n.start > 15]


@pytest.mark.parametrize(("args", "fragments"), [
    (["--beats", "9-16"], ["--beats is not for MIDI pieces on a beat grid", "--bars 5-8 or --seconds 12-20"]),
    (["--bars", "4-5"], ["--bars 4-5 crosses a change of meter at 8.23 s"]),
    (["--seconds", "2-90"], ["--seconds 2-90 lies outside the piece, which lasts"]),
    (["--bars", "5-7"], ["a MIDI model writes its versions as .mid files: give --output-dir DIR"]),
])
def test_bad_midi_spans_are_one_line_errors(beat_run, tmp_path, args, fragments):
    run, piece = beat_run
    extra = [] if args == ["--bars", "5-7"] else ["--output-dir", str(tmp_path / "out")]
    assert_one_line_error(run_cli("infill", str(run), str(piece), *args, *extra), *fragments)
