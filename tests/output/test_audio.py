"""Rendering audio: WAV through midirenderer, a SoundFont or sine tones, and its input errors."""

import wave
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from genseq.errors import GenseqError, InputError
from genseq.output import audio, plots


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as handle:
        frames = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
        return frames.reshape(-1, handle.getnchannels()), handle.getframerate()


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
