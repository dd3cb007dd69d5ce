"""Outputs a person listens to or looks at: WAV, piano-roll and loss-curve PNGs, scores, a report.

Libraries are imported inside the function that needs them, so the core runs without the optional
ones; a missing one raises MissingPackage naming what to install.
"""

from __future__ import annotations

import copy
import html
import io
import os
import urllib.parse
import wave
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from genseq.console import say
from genseq.errors import GenseqError, InputError
from genseq.files import atomic_file, write_atomic
from genseq.tokenizers.abc import one_line, parse_abc
from genseq.tokenizers.midi import MIDI_SUFFIXES

if TYPE_CHECKING:
    import pretty_midi

PathLike: TypeAlias = "str | os.PathLike[str]"
MidiSource: TypeAlias = "pretty_midi.PrettyMIDI | str | os.PathLike[str]"

RELEASE_SECONDS = 1.0
"""Audio kept after the last note ends, so its release is heard rather than cut."""


class MissingPackage(GenseqError):
    """A library an output needs is not installed (the message names what to install)."""


def _missing(package: str, extra: str | None = None) -> MissingPackage:
    fix = f"pip install 'genseq[{extra}]'" if extra else f"pip install {package} (a genseq dependency)"
    return MissingPackage(f"{package} is not installed; install it with: {fix}")


def _load_midi(midi: MidiSource) -> pretty_midi.PrettyMIDI:
    import pretty_midi

    if isinstance(midi, pretty_midi.PrettyMIDI):
        return midi
    try:
        return pretty_midi.PrettyMIDI(str(midi))
    except Exception as err:  # mido and pretty_midi raise many types on broken files
        raise InputError(f"{midi} is not a readable MIDI file ({type(err).__name__}); give a .mid file") from None


def default_soundfont() -> Path:
    """The small General MIDI SoundFont that ships inside the pretty_midi package."""
    import pretty_midi

    return Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"


SOUNDFONT_RENDERERS = ("tinysoundfont", "midirenderer")
"""SoundFont synthesizers in the order they are preferred: tinysoundfont (44.1 kHz, release tails, gain) when
a user installed it, else midirenderer (48 kHz, a core dependency: one wheel, no dependencies)."""

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
    score = _load_midi(midi)
    if not any(instrument.notes for instrument in score.instruments):
        raise InputError(f"{midi} holds no notes; there is nothing to play")
    renderer = audio_renderer()
    if renderer == "sine":
        if soundfont is not None:
            raise GenseqError("playing a SoundFont needs midirenderer or tinysoundfont, and neither installs on "
                              "this platform; leave out --soundfont for sine tones")
        if not _said_sine[0]:
            say("[yellow]warning:[/] neither midirenderer nor tinysoundfont is installed; WAVs are sine tones "
                "(pip install midirenderer for SoundFont audio)")
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


def _figure(width: float, height: float) -> Any:
    """A matplotlib figure drawn by Agg, without pyplot's global state."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise _missing("matplotlib", "plot") from None
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(figure: Any, path: PathLike) -> Path:
    path = Path(path)
    with atomic_file(path, "image ") as handle:
        figure.savefig(handle, format="png")
    return path


def piano_roll_png(midi: MidiSource, png_path: PathLike) -> Path:
    """Notes as bars (pitch against seconds), one colour per instrument; drum hits drawn as crosses."""
    import pretty_midi

    score = _load_midi(midi)
    figure = _figure(12, 5)
    axes = figure.add_subplot()
    pitches = [n.pitch for i in score.instruments for n in i.notes] or [60]
    for index, instrument in enumerate(i for i in score.instruments if i.notes):
        colour = f"C{index % 10}"
        notes = instrument.notes
        if instrument.is_drum:
            axes.scatter([n.start for n in notes], [n.pitch for n in notes], marker="x", color=colour,
                         label=instrument.name or "drums")
            continue
        label = instrument.name or pretty_midi.program_to_instrument_name(instrument.program)
        axes.barh([n.pitch for n in notes], [n.end - n.start for n in notes], left=[n.start for n in notes],
                  height=0.8, color=colour, edgecolor="black", linewidth=0.3, label=label)
    low, high = min(pitches) - 2, max(pitches) + 2
    labelled = {0} if high - low > 24 else {0, 4, 7}  # C only on wide rolls; C, E and G on narrow ones
    ticks = [p for p in range(low, high + 1) if p % 12 in labelled] or [low]
    axes.set_yticks(ticks, [pretty_midi.note_number_to_name(p) for p in ticks])
    axes.set_ylim(low, high)
    axes.set_xlim(0, max(score.get_end_time(), 0.1))
    axes.set_xlabel("seconds")
    axes.set_ylabel("pitch")
    axes.grid(axis="y", alpha=0.3)
    if score.instruments:
        axes.legend(loc="upper right", fontsize="small")
    return _save(figure, png_path)


def loss_curve_png(metrics: list[dict[str, Any]], png_path: PathLike) -> Path:
    """Training and validation loss against step, from the run's metric records (events skipped)."""
    records = [r for r in metrics if "event" not in r and "step" in r]
    figure = _figure(8, 4.5)
    axes = figure.add_subplot()
    drawn = False
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        points = [(r["step"], r[key]) for r in records if r.get(key) is not None]
        if points:
            steps, losses = zip(*points)
            axes.plot(steps, losses, marker="." if len(points) < 50 else None, label=label)
            drawn = True
    if not drawn:
        raise InputError("the metrics hold no train_loss or val_loss values; train for a few steps first")
    axes.set_xlabel("step")
    axes.set_ylabel("loss (nats/token)")
    axes.grid(alpha=0.3)
    axes.legend()
    return _save(figure, png_path)


def _is_file(source: Any) -> bool:
    return isinstance(source, os.PathLike) or (isinstance(source, str) and "\n" not in source
                                               and Path(source).is_file())


def _music21_score(source: Any, title: str, own_title: bool = True) -> Any:
    """A music21 score of ABC text, an .abc file, a MIDI object or a .mid file, titled `title`; with `own_title`,
    only where the music has no title of its own (MIDI, a tune without `T:`; music21 would call it "Music21
    Fragment")."""
    from music21 import metadata, midi

    if _is_file(source):
        is_midi = Path(source).suffix.lower() in MIDI_SUFFIXES
        source = Path(source) if is_midi else Path(source).read_text(encoding="utf-8")
    if isinstance(source, str):
        score = parse_abc(source)
    else:
        buffer = io.BytesIO()
        _load_midi(source).write(buffer)
        midi_file = midi.MidiFile()
        midi_file.readstr(buffer.getvalue())
        score = _engraved_in_key(midi.translate.midiFileToStream(midi_file))
    if score.metadata is None:
        score.insert(0, metadata.Metadata())
    if not (own_title and score.metadata.title):
        score.metadata.title = title
    return score


def _engraved_in_key(score: Any) -> Any:
    """MIDI carries pitches, not their spelling or key: music21 spells every black key alike (E-flat beside
    D-sharp) and gives each part a treble or bass clef. Here the piece's key (Krumhansl-Schmuckler) becomes
    the key signature, each note is spelled in it, and a tenor part gets the octave-treble clef."""
    from music21 import clef, key, pitch, scale

    if not score.recurse().notes:
        return score
    found = score.analyze("key")
    spelled = {p.pitchClass: p.name for p in found.pitches}
    if found.mode == "minor":  # the raised sixth and seventh degrees
        spelled.update({p.pitchClass: p.name for p in scale.MelodicMinorScale(found.tonic).getPitches()})
    lowered = {"major": 10, "minor": 1}.get(found.mode)  # the flat seventh (V of IV), the Neapolitan second
    for pc in set(range(12)) - set(spelled):  # a chromatic note is the degree below it raised, as a leading tone
        up = (pc - found.tonic.pitchClass) % 12 != lowered
        spelled[pc] = pitch.Pitch(spelled[(pc - 1 if up else pc + 1) % 12]).transpose("A1" if up else "-A1").name
    for part in score.parts:
        for old in list(part.recurse().getElementsByClass((clef.Clef, key.KeySignature))):  # listed: removed below
            old.activeSite.remove(old)
        first = part.getElementsByClass("Measure").first() or part
        first.insert(0, clef.bestClef(part, allowTreble8vb=True, recurse=True))
        first.insert(0, key.KeySignature(found.sharps))
        for note_pitch in part.recurse().stream().pitches:
            for other in (note_pitch, *note_pitch.getAllCommonEnharmonics()):
                if other.name == spelled[note_pitch.pitchClass]:
                    note_pitch.name, note_pitch.octave = other.name, other.octave
                    break
    return score


def _musicxml_bytes(source: Any, path: Path, title: str | None) -> bytes:
    """MusicXML of a score source, titled `title` or else its own title or the stem of `path`; a MusicXML file is
    passed through as it is."""
    if _is_file(source) and Path(source).suffix.lower() in {".xml", ".musicxml"}:
        return Path(source).read_bytes()
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    try:
        return GeneralObjectExporter(_music21_score(source, title or path.stem, own_title=title is None)).parse()
    except GenseqError:
        raise
    except Exception as err:  # durations MusicXML cannot express, and other music21 export failures
        raise InputError(f"music21 cannot write this music as MusicXML: {one_line(err)}") from None


def musicxml(source: str | MidiSource, path: PathLike, title: str | None = None) -> Path:
    """Write ABC text (or an .abc file) or MIDI as MusicXML, the format MuseScore and others open; `title`
    replaces the music's own (default: its own, else the file's stem)."""
    path = Path(path)
    write_atomic(path, _musicxml_bytes(source, path, title), "score ")
    return path


def score_svg(source: str | MidiSource, svg_path: PathLike, title: str | None = None) -> Path:
    """Engrave the first page of ABC text, an .abc file, MIDI or a MusicXML file as SVG with verovio.

    ABC goes to verovio as MusicXML written by music21: verovio's own ABC reader crashes the
    process on some malformed tunes, and music21 has checked the tune first. `title` replaces the music's own
    (default: its own, else the file's stem).
    """
    try:
        import verovio
    except ImportError:
        raise _missing("verovio") from None
    verovio.enableLog(verovio.LOG_OFF)  # its warnings about open ties would clutter the console
    verovio.setDefaultResourcePath(str(Path(verovio.__file__).parent / "data"))  # set at import for that thread only
    toolkit = verovio.toolkit()
    toolkit.setOptions({"adjustPageHeight": True, "footer": "none", "scale": 50})
    path = Path(svg_path)
    if not toolkit.loadData(_musicxml_bytes(source, path, title).decode("utf-8")) or toolkit.getPageCount() < 1:
        raise InputError(f"verovio cannot engrave this music: {one_line(toolkit.getLog())}")
    write_atomic(path, toolkit.renderToSVG(1), "score ")
    return path


_REPORT_CSS = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin: 0 0 .5em; }
section { border: 1px solid #ddd; border-radius: 6px; padding: 1em; margin: 1em 0; }
table { border-collapse: collapse; font-size: .9em; } td { padding: .1em .8em .1em 0; vertical-align: top; }
td:first-child { color: #666; } img { max-width: 100%; display: block; margin: .5em 0; }
pre { background: #f6f6f6; padding: .7em; overflow-x: auto; font-size: .85em; } .note { color: #a40; }
"""


def _settings_table(settings: dict[str, Any]) -> str:
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                   for k, v in settings.items())
    return f"<table>{rows}</table>"


def _link(path: PathLike, out_dir: Path) -> str:
    """A relative URL from the report to `path`, so the folder opens from disk or moves as a whole."""
    relative = os.path.relpath(Path(path).resolve(), out_dir.resolve())
    return html.escape(urllib.parse.quote(Path(relative).as_posix()))


def _sample_section(sample: dict[str, Any], out_dir: Path) -> str:
    def present(key: str) -> bool:
        return sample.get(key) is not None and Path(sample[key]).is_file()

    parts = [f"<h2>{html.escape(str(sample.get('name', 'sample')))}</h2>"]
    if sample.get("note"):
        parts.append(f"<p class='note'>{html.escape(str(sample['note']))}</p>")
    if present("wav"):
        parts.append(f"<audio controls preload='none' src='{_link(sample['wav'], out_dir)}'></audio>")
    for key, alt in (("piano_roll", "piano roll"), ("score", "score")):
        if present(key):
            parts.append(f"<img src='{_link(sample[key], out_dir)}' alt='{alt}'>")
    downloads = [f"<a href='{_link(sample[k], out_dir)}'>{k}</a>" for k in ("midi", "musicxml", "text_file")
                 if present(k)]
    if downloads:
        parts.append("<p>" + " · ".join(downloads) + "</p>")
    if sample.get("text"):
        parts.append(f"<pre>{html.escape(str(sample['text']))}</pre>")
    if sample.get("settings"):
        parts.append(_settings_table(sample["settings"]))
    return "<section>" + "\n".join(parts) + "</section>"


def html_report(samples: list[dict[str, Any]], out_dir: PathLike, settings: dict[str, Any],
                title: str = "genseq samples", sections: list[str] | tuple[str, ...] = ()) -> Path:
    """Write `out_dir/index.html`: a static page (no server, no external assets) to hear and see samples.

    Each sample is a dict with optional keys `name`, `text`, `note`, `settings` (its own, shown
    under it) and file paths `wav`, `piano_roll`, `score`, `midi`, `musicxml`, `text_file`; only
    files that exist are linked, relative to the page. `sections` are HTML blocks (already escaped,
    such as the judge's table) shown above the samples.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    body = "\n".join(_sample_section(sample, out_dir) for sample in samples)
    page = (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_REPORT_CSS}</style></head><body>\n<h1>{html.escape(title)}</h1>\n"
            f"{_settings_table(settings)}\n{''.join(sections)}{body}\n</body></html>\n")
    path = out_dir / "index.html"
    write_atomic(path, page, "report ")
    return path
