"""MIDI to WAV: a SoundFont synthesizer where one is installed, else additive sine tones."""

from __future__ import annotations

import copy
import io
import wave
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from genseq.console import say
from genseq.errors import GenseqError, InputError, one_line
from genseq.files import atomic_file
from genseq.output.base import MidiSource, PathLike, load_midi

if TYPE_CHECKING:
    import pretty_midi

RELEASE_SECONDS = 1.0
"""Audio kept after the last note ends, so its release is heard rather than cut."""


def default_soundfont() -> Path:
    """The small General MIDI SoundFont that ships inside the pretty_midi package."""
    import pretty_midi

    return Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"


SOUNDFONT_RENDERERS = ("tinysoundfont", "midirenderer")
"""SoundFont synthesizers in the order they are preferred: tinysoundfont (44.1 kHz, release tails, gain) when
a user installed it, else midirenderer (48 kHz, the `audio` extra: one wheel, no dependencies, no sdist)."""

_said_sine = [False]


def audio_renderer() -> str:
    """What `midi_to_wav` plays notes with here: "tinysoundfont", "midirenderer" or "sine"."""
    for name in SOUNDFONT_RENDERERS:
        try:
            __import__(name)
        except ImportError:
            continue
        return name
    return "sine"


def midi_to_wav(midi: MidiSource, wav_path: PathLike, soundfont: PathLike | None = None,
                sample_rate: int | None = None) -> Path:
    """Render MIDI to a 16-bit WAV, peak-normalised, lasting to the last note plus a release tail.

    The notes are played by a SoundFont (General MIDI instruments and drums; `soundfont` picks
    another .sf2) through `audio_renderer()`, at its own rate unless `sample_rate` is given.
    Where neither synthesizer's wheel exists, sine tones and noise bursts stand in (said once).
    """
    score = load_midi(midi)
    if not any(instrument.notes for instrument in score.instruments):
        raise InputError(f"{midi} holds no notes; there is nothing to play")
    renderer = audio_renderer()
    if renderer == "sine":
        if soundfont is not None:
            raise GenseqError("playing a SoundFont needs midirenderer or tinysoundfont, and neither is installed; "
                              "pip install 'genseq[audio]', or leave out --soundfont for sine tones")
        if not _said_sine[0]:
            say("[yellow]warning:[/] neither midirenderer nor tinysoundfont is installed; WAVs are sine tones "
                "(pip install 'genseq[audio]' for SoundFont audio)")
            _said_sine[0] = True
        rate = sample_rate or 44100
        audio = _additive_audio(score, rate, round((score.get_end_time() + RELEASE_SECONDS) * rate))
    else:
        font = Path(soundfont or default_soundfont())
        if not font.is_file():
            raise InputError(f"soundfont {font} does not exist; give the path of an .sf2 file")
        make = _tinysoundfont_audio if renderer == "tinysoundfont" else _midirenderer_audio
        audio, rate = make(score, font, sample_rate)
    _write_wav(Path(wav_path), audio, rate)
    return Path(wav_path)


def _midi_bytes(score: pretty_midi.PrettyMIDI) -> bytes:
    buffer = io.BytesIO()
    score.write(buffer)
    return buffer.getvalue()


def _tinysoundfont_audio(score: pretty_midi.PrettyMIDI, soundfont: Path,
                         sample_rate: int | None) -> tuple[np.ndarray, int]:
    """Stereo float samples from tinysoundfont's offline synth (its PyAudio playback is never used)."""
    import tinysoundfont

    rate = sample_rate or 44100
    synth = tinysoundfont.Synth(samplerate=rate)
    try:
        synth.sfload(str(soundfont))
    except Exception as err:
        raise InputError(f"{soundfont} is not a usable SoundFont ({one_line(err)}); give an .sf2 file") from None
    tinysoundfont.Sequencer(synth).add(tinysoundfont.midi.load_memory(_midi_bytes(score)))
    frames = round((score.get_end_time() + RELEASE_SECONDS) * rate)
    return np.frombuffer(synth.generate(frames), dtype=np.float32).reshape(-1, 2), rate


MIDIRENDERER_RATE = 48000


def _midirenderer_audio(score: pretty_midi.PrettyMIDI, soundfont: Path,
                        sample_rate: int | None) -> tuple[np.ndarray, int]:
    """Stereo samples from midirenderer, which renders to the file's last event: a silent controller
    change RELEASE_SECONDS after the last note keeps the release tail."""
    import midirenderer
    import pretty_midi

    end = score.get_end_time() + RELEASE_SECONDS
    padded = copy.deepcopy(score)
    marker = pretty_midi.Instrument(program=0, name="end")
    marker.control_changes.append(pretty_midi.ControlChange(number=64, value=0, time=end))  # sustain off: silent
    padded.instruments.append(marker)
    try:
        data = midirenderer.render_wave_from(soundfont.read_bytes(), _midi_bytes(padded))
    except (RuntimeError, ValueError) as err:
        raise InputError(f"{soundfont} is not a usable SoundFont ({one_line(err)}); give an .sf2 file") from None
    with wave.open(io.BytesIO(data)) as handle:
        rate, channels = handle.getframerate(), handle.getnchannels()
        audio = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2").reshape(-1, channels) / 32768
    frames = round(end * rate)
    audio = np.pad(audio[:frames], ((0, max(0, frames - len(audio))), (0, 0)))
    if sample_rate is None or sample_rate == rate:
        return audio, rate
    times = np.arange(round(end * sample_rate)) / sample_rate
    source_times = np.arange(len(audio)) / rate
    return np.stack([np.interp(times, source_times, audio[:, c]) for c in range(channels)], axis=1), sample_rate


def _additive_audio(score: pretty_midi.PrettyMIDI, sample_rate: int, frames: int) -> np.ndarray:
    """Mono samples: pretty_midi's sine tones per instrument, plus decaying noise for drum hits."""
    audio = np.zeros(frames)
    for instrument in (i for i in score.instruments if not i.is_drum):
        tones = instrument.synthesize(fs=sample_rate)[:frames]
        audio[: len(tones)] += tones
    hit_frames = int(0.12 * sample_rate)
    hit = np.random.default_rng(0).uniform(-1, 1, hit_frames) * np.exp(-np.linspace(0, 8, hit_frames))
    for note in (n for i in score.instruments if i.is_drum for n in i.notes):
        start = int(note.start * sample_rate)
        segment = audio[start: start + hit_frames]
        segment += hit[: len(segment)] * note.velocity / 127
    return audio


def _write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    peak = float(np.abs(audio).max())
    scaled = audio * (0.9 / peak) if peak > 0 else audio
    samples = (scaled * 32767).astype("<i2")
    with atomic_file(path, "audio ") as file, wave.open(file, "wb") as handle:
        handle.setnchannels(1 if audio.ndim == 1 else audio.shape[1])
        handle.setsampwidth(2)
        handle.setframerate(sample_rate)
        handle.writeframes(samples.tobytes())
