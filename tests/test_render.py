"""Rendering: WAV audio, piano-roll and loss PNGs, engraved SVG, MusicXML and the HTML report."""

import re
import struct
import wave
from collections import Counter
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from genseq.corpora.sources import split_abc_tunes
from genseq.errors import GenseqError, InputError
from genseq.output import audio, base, engraving, plots, report

TUNE = "X:1\nT:Test jig\nM:6/8\nL:1/8\nK:G\n|:GAB c2d|e3 d3|BAG AFD|G3 G3:|\n"


@pytest.fixture
def band() -> pretty_midi.PrettyMIDI:
    """Four seconds of piano and a drum kit, built note by note."""
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0, name="piano")
    drums = pretty_midi.Instrument(program=0, is_drum=True, name="drums")
    for beat in range(8):
        piano.notes.append(pretty_midi.Note(90, 60 + beat, beat * 0.5, beat * 0.5 + 0.45))
        drums.notes.append(pretty_midi.Note(100, 36 if beat % 2 == 0 else 38, beat * 0.5, beat * 0.5 + 0.1))
    midi.instruments += [piano, drums]
    return midi


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as handle:
        frames = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
        return frames.reshape(-1, handle.getnchannels()), handle.getframerate()


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_wav_is_audible_and_lasts_as_long_as_the_music(band, tmp_path):
    samples, rate = read_wav(audio.midi_to_wav(band, tmp_path / "band.wav", sample_rate=22050))
    assert rate == 22050
    assert abs(len(samples) / rate - band.get_end_time()) <= 0.5 + audio.RELEASE_SECONDS
    assert np.abs(samples[: int(3.5 * rate)]).mean() > 100


def test_default_renderer_is_midirenderer_at_48_khz_stereo(band, tmp_path):
    if audio.audio_renderer() != "midirenderer":
        pytest.skip("tinysoundfont is installed and preferred; its own test covers it")
    samples, rate = read_wav(audio.midi_to_wav(band, tmp_path / "band.wav"))
    assert (rate, samples.shape[1]) == (48000, 2)
    assert len(samples) == round((band.get_end_time() + audio.RELEASE_SECONDS) * rate)


def dominant_hz(samples: np.ndarray, rate: int, start: float, end: float) -> float:
    segment = samples[int(start * rate): int(end * rate)].mean(axis=1)
    spectrum = np.abs(np.fft.rfft(segment * np.hanning(len(segment))))
    return float(np.fft.rfftfreq(len(segment), 1 / rate)[spectrum.argmax()])


@pytest.mark.parametrize("renderer", audio.SOUNDFONT_RENDERERS)
def test_soundfont_plays_a4_at_440_hz_and_rings_into_the_tail(renderer, tmp_path, monkeypatch):
    pytest.importorskip(renderer)
    monkeypatch.setattr(audio, "audio_renderer", lambda: renderer)
    flute = pretty_midi.PrettyMIDI()
    flute.instruments.append(pretty_midi.Instrument(program=73))
    flute.instruments[0].notes.append(pretty_midi.Note(100, 69, 0.0, 1.0))
    samples, rate = read_wav(audio.midi_to_wav(flute, tmp_path / "a4.wav"))
    assert abs(dominant_hz(samples, rate, 0.1, 0.6) - 440) < 5
    assert len(samples) / rate == pytest.approx(1.0 + audio.RELEASE_SECONDS, abs=0.01)
    assert np.abs(samples[int(1.02 * rate): int(1.1 * rate)]).mean() > 10  # the release, not a cut


def test_shipped_folk_model_sample_renders_to_audible_audio_of_its_length(tmp_path):
    import genseq
    from genseq.music.abc import abc_to_midi

    tune = genseq.load("folk-abc-small").sample(length=300, seed=3, temperature=0.9, precision="fp32")[0]
    midi = abc_to_midi(tune)
    samples, rate = read_wav(audio.midi_to_wav(midi, tmp_path / "tune.wav"))
    assert len(samples) / rate == pytest.approx(midi.get_end_time() + audio.RELEASE_SECONDS, abs=0.01)
    seconds = [np.abs(samples[i * rate: (i + 1) * rate]).mean() for i in range(int(midi.get_end_time()))]
    assert seconds and min(seconds) > 50  # no second is silent (a rest still rings with the note before it)
    assert sum(level > 300 for level in seconds) >= 0.9 * len(seconds)  # and nearly all are heard clearly


def test_midi_file_path_renders_like_the_object(band, tmp_path):
    band.write(str(tmp_path / "band.mid"))
    samples, rate = read_wav(audio.midi_to_wav(tmp_path / "band.mid", tmp_path / "band.wav", sample_rate=8000))
    assert abs(len(samples) / rate - (band.get_end_time() + audio.RELEASE_SECONDS)) < 0.01


def test_fallback_synthesis_plays_tones_and_drums(band):
    rate = 8000
    sound = audio._additive_audio(band, rate, int(5 * rate))
    assert np.abs(sound[: 4 * rate]).mean() > 0.01
    drums_only = pretty_midi.PrettyMIDI()
    drums_only.instruments.append(band.instruments[1])
    assert np.abs(audio._additive_audio(drums_only, rate, 5 * rate)).max() > 0.1


def test_missing_soundfont_file_is_an_input_error(band, tmp_path):
    with pytest.raises(InputError, match="no-such.sf2"):
        audio.midi_to_wav(band, tmp_path / "x.wav", soundfont=tmp_path / "no-such.sf2")


@pytest.mark.parametrize("renderer", audio.SOUNDFONT_RENDERERS)
def test_a_file_that_is_no_soundfont_is_an_input_error(renderer, band, tmp_path, monkeypatch):
    pytest.importorskip(renderer)
    monkeypatch.setattr(audio, "audio_renderer", lambda: renderer)
    fake = tmp_path / "fake.sf2"
    fake.write_bytes(b"RIFF not a soundfont")
    with pytest.raises(InputError, match="fake.sf2 is not a usable SoundFont"):
        audio.midi_to_wav(band, tmp_path / "x.wav", soundfont=fake)


def test_a_given_soundfont_is_played(band, tmp_path):
    copy = tmp_path / "my font.sf2"
    copy.write_bytes(audio.default_soundfont().read_bytes())
    samples, _ = read_wav(audio.midi_to_wav(band, tmp_path / "x.wav", soundfont=copy))
    assert np.abs(samples).mean() > 100


def test_without_a_synthesizer_sine_tones_are_said_once_and_a_soundfont_is_refused(band, tmp_path, monkeypatch,
                                                                                   capfd):
    monkeypatch.setattr(audio, "audio_renderer", lambda: "sine")
    monkeypatch.setattr(audio, "_said_sine", [False])
    for name in ("a", "b"):
        samples, rate = read_wav(audio.midi_to_wav(band, tmp_path / f"{name}.wav", sample_rate=8000))
        assert np.abs(samples).mean() > 100 and samples.shape[1] == 1
    assert " ".join(capfd.readouterr().err.split()).count("WAVs are sine tones") == 1
    with pytest.raises(GenseqError, match="--soundfont"):
        audio.midi_to_wav(band, tmp_path / "c.wav", soundfont=audio.default_soundfont())


def test_broken_midi_file_is_an_input_error(tmp_path):
    broken = tmp_path / "broken.mid"
    broken.write_bytes(b"MThd not really")
    with pytest.raises(InputError, match="broken.mid"):
        plots.piano_roll_png(broken, tmp_path / "roll.png")


def test_piano_roll_is_a_png_of_sensible_size(band, tmp_path):
    width, height = png_size(plots.piano_roll_png(band, tmp_path / "roll.png"))
    assert 600 <= width <= 2000 and 300 <= height <= 1200


def test_loss_curve_skips_events_and_missing_values(tmp_path):
    metrics = [{"event": "start"}] + [
        {"step": step, "train_loss": 3.0 / step, "val_loss": 3.2 / step if step % 100 == 0 else None}
        for step in range(10, 510, 10)
    ]
    width, height = png_size(plots.loss_curve_png(metrics, tmp_path / "loss.png"))
    assert width >= 400 and height >= 200


def test_loss_curve_without_losses_is_an_input_error(tmp_path):
    with pytest.raises(InputError):
        plots.loss_curve_png([{"event": "start"}, {"step": 1, "train_loss": None}], tmp_path / "loss.png")


def test_score_svg_engraves_abc_text(tmp_path):
    pytest.importorskip("verovio")  # the [score] extra
    svg = engraving.score_svg(TUNE, tmp_path / "tune.svg").read_text(encoding="utf-8")
    assert "<svg" in svg and len(svg) > 5000


def test_score_svg_engraves_in_a_worker_thread(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:  # verovio's font path is set per thread; the studio engraves off the main one
        svg = pool.submit(engraving.score_svg, TUNE, tmp_path / "tune.svg").result()
    assert svg.read_text(encoding="utf-8").startswith("<svg")


def test_score_svg_reads_musicxml_from_music21_corpus(tmp_path):
    pytest.importorskip("verovio")
    import music21
    book = Path(music21.__file__).parent / "corpus" / "airdsAirs" / "book1.abc"
    first_tune = split_abc_tunes(book.read_text(encoding="utf-8"))[0]
    xml = engraving.musicxml(first_tune, tmp_path / "aird.musicxml")
    assert "<score-partwise" in xml.read_text(encoding="utf-8")
    assert "<svg" in engraving.score_svg(xml, tmp_path / "aird.svg").read_text(encoding="utf-8")


def test_musicxml_from_midi_has_the_notes(band, tmp_path):
    band.instruments.pop()  # drums do not notate as pitches
    xml = engraving.musicxml(band, tmp_path / "band.musicxml").read_text(encoding="utf-8")
    assert "<score-partwise" in xml and xml.count("<note") >= 8


def _chorale_through_midi(number: str, path: Path) -> tuple[object, Path]:
    """A Bach chorale from music21's corpus and the same chorale as a .mid file, which keeps only its pitches."""
    from music21 import corpus

    chorale = corpus.parse(f"bach/bwv{number}")
    chorale.write("midi", fp=path)
    return chorale, path


@pytest.mark.parametrize("number", ["40.8", "26.6"])  # F minor (four flats, E naturals); A minor (G-sharps)
def test_a_score_from_midi_is_written_in_the_music_s_key_with_a_tenor_clef(number, tmp_path):
    from music21 import converter

    chorale, midi_file = _chorale_through_midi(number, tmp_path / "chorale.mid")
    engraved = converter.parse(engraving.musicxml(str(midi_file), tmp_path / "chorale.musicxml"))
    signature = engraved.parts[0].recurse().getElementsByClass("KeySignature").first()
    assert signature.sharps == chorale.analyze("key").sharps
    original = Counter(p.nameWithOctave for p in chorale.recurse().stream().pitches)
    written = Counter(p.nameWithOctave for p in engraved.recurse().stream().pitches)
    assert written == original  # every note spelled as Bach spelled it
    clefs = [part.recurse().getElementsByClass("Clef").first().sign + str(part.recurse().getElementsByClass(
        "Clef").first().octaveChange) for part in engraved.parts]
    assert clefs == ["G0", "G0", "G-1", "F0"]  # soprano, alto, tenor an octave down, bass


def test_music_without_a_title_is_named_after_its_file(band, tmp_path):
    band.instruments.pop()
    untitled = "X:1\nM:6/8\nL:1/8\nK:G\n|:GAB c2d|e3 d3:|\n"
    for source, name in ((band, "band"), (untitled, "tune"), (TUNE, "jig")):
        xml = engraving.musicxml(source, tmp_path / f"{name}.musicxml").read_text(encoding="utf-8")
        assert "Music21 Fragment" not in xml
        assert (">Test jig<" if name == "jig" else f">{name}<") in xml  # a tune's own T: wins


def test_a_sampled_tune_is_titled_by_its_number_not_by_what_the_model_wrote(tmp_path):
    from genseq.api import export
    from genseq.tokenizers.abc import AbcTokenizer

    written = TUNE.replace("Test jig", "Ab Scag?, ES DAR")  # a title as a model writes one
    result = export.export_samples([TUNE, written], AbcTokenizer(written + TUNE), tmp_path, export.Outputs(score=True),
                                   {})
    for number, entry in enumerate(result.files, 1):
        xml = entry["musicxml"].read_text(encoding="utf-8")
        assert f">genseq tune {number}<" in xml and "Test jig" not in xml and "Scag" not in xml
        assert f"genseq tune {number}" in entry["score"].read_text(encoding="utf-8")


def test_a_midi_file_given_by_its_path_as_text_engraves_as_midi(band, tmp_path):
    band.instruments.pop()
    band.write(str(tmp_path / "band.mid"))
    xml = engraving.musicxml(str(tmp_path / "band.mid"), tmp_path / "band.musicxml").read_text(encoding="utf-8")
    assert xml.count("<note") >= 8


def test_html_report_links_only_files_that_exist(band, tmp_path):
    out = tmp_path / "report"
    roll = plots.piano_roll_png(band, out / "sample-01.png")
    sample = {"name": "sample-01", "text": TUNE, "piano_roll": roll, "wav": out / "missing.wav",
              "settings": {"seed": 3}}
    page = report.html_report([sample], out, {"temperature": 0.9, "checkpoint": "runs/x/best.pt"})
    text = page.read_text(encoding="utf-8")
    links = re.findall(r"(?:src|href)='([^']+)'", text)
    assert links == ["sample-01.png"]
    assert all((out / link).is_file() for link in links)
    assert "missing.wav" not in text and "Test jig" in text and "temperature" in text and "<audio" not in text


def test_html_report_plays_wav_relative_to_the_page(band, tmp_path):
    out = tmp_path / "report"
    wav = audio.midi_to_wav(band, out / "audio" / "s 1.wav", sample_rate=8000)
    text = report.html_report([{"name": "s", "wav": wav}], out, {}).read_text(encoding="utf-8")
    assert "<audio controls preload='none' src='audio/s%201.wav'>" in text


def test_a_report_without_matplotlib_keeps_audio_and_score_and_says_so_once(tmp_path, monkeypatch, capfd):
    from genseq.api import export
    from genseq.tokenizers.abc import AbcTokenizer

    def no_matplotlib(*args, **kwargs):
        raise base.missing_package("matplotlib", "plot")

    monkeypatch.setattr(plots, "piano_roll_png", no_matplotlib)
    tokenizer = AbcTokenizer(TUNE)
    result = export.export_samples([TUNE, TUNE], tokenizer, tmp_path, export.Outputs(report=True), {})
    assert result.missing == ["matplotlib is not installed; install it with: pip install 'genseq[plot]'"]
    assert all(entry["wav"].is_file() and entry["score"].is_file() for entry in result.files)
    assert "no piano roll: matplotlib is not installed" in result.report.read_text(encoding="utf-8")
    assert " ".join(capfd.readouterr().err.split()).count("pip install 'genseq[plot]'") == 1
    with pytest.raises(base.MissingPackage):  # asked for by name, it is an error
        export.export_samples([TUNE], tokenizer, tmp_path / "png", export.Outputs(png=True), {})
