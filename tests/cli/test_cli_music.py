"""Music through the CLI as a musician would use it: MIDI folders, ABC tunes, files out."""

import json
import wave

import pretty_midi
import pytest

from tests.helpers import assert_one_line_error, band_with_tempo_changes, run_cli, silent_file

TUNES = "\n".join(
    f"X:{i}\nT:Tune {i}\nM:6/8\nL:1/8\nK:D\n|:dfa afd|{'gbe' if i % 2 else 'ece'} gfe|dfa afd|e3 d3:|\n"
    for i in range(1, 41)
)


@pytest.fixture(scope="module")
def midi_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("midi")
    for i in range(12):
        (folder / f"band{i:02d}.mid").write_bytes(band_with_tempo_changes(i))
    (folder / "broken.mid").write_bytes(b"MThd" + bytes(40))
    run = tmp_path_factory.mktemp("runs") / "midi"
    result = run_cli("train", str(folder), "--tokenizer", "midi", "--augment", "transpose=-1..1", "--name", str(run),
                     "--steps", "20", "--eval-every", "10", "--hidden", "32", "--batch-size", "4", "--seq-len", "32",
                     "--quiet")
    assert result.returncode == 0, result.stderr
    assert "skipped broken.mid" in result.stderr or "broken.mid" in result.stderr
    return run, folder


@pytest.fixture(scope="module")
def abc_run(tmp_path_factory):
    tunes = tmp_path_factory.mktemp("abc") / "tunes.abc"
    tunes.write_text(TUNES)
    run = tmp_path_factory.mktemp("runs") / "abc"
    result = run_cli("train", str(tunes), "--name", str(run), "--steps", "150", "--eval-every", "75",
                     "--hidden", "64", "--batch-size", "8", "--seq-len", "64", "--lr", "0.01", "--quiet")
    assert result.returncode == 0, result.stderr
    return run


def test_midi_run_records_augmentation_and_samples_valid_midi_files(midi_run, tmp_path):
    run, _ = midi_run
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["augment"] == "transpose=-1..1" and config["data"]["skipped"] == 1
    out = tmp_path / "out"
    result = run_cli("sample", str(run), "--num-samples", "2", "--length", "300", "--seed", "1",
                     "--output-dir", str(out), "--wav", "--png")
    assert result.returncode == 0, result.stderr
    for i in (1, 2):
        midi = pretty_midi.PrettyMIDI(str(out / f"sample-{i:02d}.mid"))
        assert midi.instruments and (out / f"sample-{i:02d}.png").stat().st_size > 1000
        with wave.open(str(out / f"sample-{i:02d}.wav")) as audio:
            assert audio.getnframes() > 0


def test_a_midi_primer_is_continued(midi_run, tmp_path):
    run, folder = midi_run
    out = tmp_path / "out"
    result = run_cli("sample", str(run), "--primer-midi", str(folder / "band00.mid"), "--length", "50",
                     "--output-dir", str(out), "--seed", "2")
    assert result.returncode == 0, result.stderr
    primed = pretty_midi.PrettyMIDI(str(out / "sample-01.mid"))
    original = pretty_midi.PrettyMIDI(str(folder / "band00.mid"))
    assert sum(len(i.notes) for i in primed.instruments) >= sum(len(i.notes) for i in original.instruments)


def test_primer_of_the_wrong_kind_is_a_clear_error(midi_run, abc_run, tmp_path):
    run, folder = midi_run
    assert_one_line_error(run_cli("sample", str(run), "--primer", "X:1", "--output-dir", str(tmp_path)),
                          "a MIDI model needs a MIDI primer")
    assert_one_line_error(run_cli("sample", str(abc_run), "--primer-midi", str(folder / "band01.mid")),
                          "cannot prime this abc model")


def test_abc_model_writes_tunes_and_their_midi(abc_run, tmp_path):
    out = tmp_path / "out"
    result = run_cli("sample", str(abc_run), "--num-samples", "4", "--temperature", "0.5", "--length", "400",
                     "--seed", "3", "--output-dir", str(out), "--json")
    assert result.returncode == 0, result.stderr
    written = json.loads(result.stdout)
    tunes = sorted(out.glob("*.abc"))
    assert len(tunes) == 4 and sum("K:D" in t.read_text() for t in tunes) >= 2
    midis = sorted(out.glob("*.mid"))
    assert len(midis) == 4 - written["unrendered"] and len(midis) >= 1
    assert any(pretty_midi.PrettyMIDI(str(m)).instruments[0].notes for m in midis)


def test_encode_shows_readable_tokens_and_round_trips(tmp_path, midi_run):
    _, folder = midi_run
    result = run_cli("encode", str(folder / "band00.mid"), str(folder / "band01.mid"), "--tokenizer", "midi",
                     "--roundtrip-dir", str(tmp_path / "rt"))
    assert result.returncode == 0, result.stderr
    assert "NOTE_ON_60" in result.stdout and "TIME_SHIFT_" in result.stdout and "DRUMS" in result.stdout
    back = pretty_midi.PrettyMIDI(str(tmp_path / "rt" / "band00.mid"))
    assert {i.is_drum for i in back.instruments} == {True, False}
    assert f"band01.mid -> {tmp_path / 'rt' / 'band01.mid'}: 100.00% of notes kept (64/64)" in result.stdout
    assert ("in all: 100.00% of notes kept (128/128): same instrument and pitch, onset and end within half a time "
            "step (5 ms)") in result.stdout


def test_encode_over_a_folder_skips_and_counts_the_files_it_cannot_read(tmp_path):
    folder = tmp_path / "songs"
    folder.mkdir()
    for i in range(3):
        (folder / f"band{i}.mid").write_bytes(band_with_tempo_changes(i))
    (folder / "broken.mid").write_bytes(b"MThd" + bytes(40))
    (folder / "silent.mid").write_bytes(silent_file())
    result = run_cli("encode", str(folder), "--tokenizer", "beat", "--roundtrip-dir", str(tmp_path / "rt"))
    assert result.returncode == 0, result.stderr
    warnings = " ".join(result.stderr.split())  # the console wraps long lines
    assert "skipped 2 file(s) of 5 that could not be read or encoded" in warnings
    assert "silent.mid has no notes" in warnings
    assert sorted(p.name for p in (tmp_path / "rt").iterdir()) == ["band0.mid", "band1.mid", "band2.mid"]
    assert "TEMPO_150" in result.stdout and "in all: 100.00% of notes kept (192/192)" in result.stdout
    assert_one_line_error(run_cli("encode", str(folder / "broken.mid"), str(folder / "silent.mid"), "--tokenizer",
                                  "beat"), "none of the 2 documents could be read", "broken.mid")


def test_render_writes_a_wav_of_the_right_length(tmp_path, midi_run):
    _, folder = midi_run
    midi_path = tmp_path / "band.mid"
    midi_path.write_bytes((folder / "band02.mid").read_bytes())
    result = run_cli("render", str(midi_path), "--png")
    assert result.returncode == 0, result.stderr
    with wave.open(str(tmp_path / "band.wav")) as audio:
        seconds = audio.getnframes() / audio.getframerate()
    assert abs(seconds - (pretty_midi.PrettyMIDI(str(midi_path)).get_end_time() + 1.0)) < 0.5
    written = (tmp_path / "band.wav").read_bytes()
    assert_one_line_error(run_cli("render", str(midi_path), "--png"), "band.wav already exists",
                          "--force")
    assert (tmp_path / "band.wav").read_bytes() == written
    assert run_cli("render", str(midi_path), "--png", "--force").returncode == 0


def test_a_folder_without_usable_files_is_one_line_error(tmp_path):
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.mid").write_bytes(b"not midi")
    assert_one_line_error(run_cli("train", str(tmp_path), "--tokenizer", "midi", cwd=tmp_path),
                          "none of the", "could be read")


def test_unknown_corpus_lists_the_known_ones(tmp_path):
    assert_one_line_error(run_cli("train", "--corpus", "polka", cwd=tmp_path), "unknown corpus 'polka'",
                          "bach-chorales", "folk-abc")
