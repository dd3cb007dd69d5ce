"""One note representation for MIDI: read through pretty_midi under hostile-file caps, written back, augmented.

Every failure of the third-party parsers (mido raises OSError, EOFError, ValueError, KeyError,
IndexError, struct errors, ...) leaves this module as one `InputError` that names the file.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, replace

import mido
import numpy as np
import pretty_midi

from genseq.errors import InputError

MIDI_SUFFIXES = (".mid", ".midi")
"""File names genseq reads as MIDI."""
MAX_FILE_BYTES = 4 * 1024 * 1024
"""Bigger files are refused unread: mido parses about 1 MB a second, so this bounds one read to seconds."""
MAX_TICKS = 10_000_000
"""pretty_midi allocates one float per tick up to the last event; this bounds that array to 80 MB."""
MAX_NOTES = 200_000
"""Notes in one file; a solo piano piece has a few thousand, a full orchestral score some tens of thousands."""
MAX_SECONDS = 2 * 60 * 60
"""Length of one file (2 hours); a longer one is corrupt or not music we can learn from in one document."""
DEFAULT_TEMPO_BPM = 120.0

MidiSource = bytes | bytearray | str | os.PathLike


@dataclass(frozen=True)
class Note:
    pitch: int
    start: float
    """Seconds from the start of the piece."""
    end: float
    velocity: int


@dataclass(frozen=True)
class Track:
    program: int
    """General MIDI program 0..127 (ignored by players for drums)."""
    is_drum: bool
    notes: tuple[Note, ...]
    name: str = ""


@dataclass(frozen=True)
class Score:
    """A piece as timed notes per instrument; tempo changes are already folded into the note times."""

    tracks: tuple[Track, ...]
    tempo_bpm: float = DEFAULT_TEMPO_BPM
    """Initial tempo, kept so a written file shows sensible bars; note times do not depend on it."""
    name: str = ""
    tempo_changes: tuple[tuple[float, float], ...] = ()
    """(seconds, quarter notes per minute) from the file's tempo map; empty: `tempo_bpm` throughout."""
    time_signatures: tuple[tuple[float, int, int], ...] = ()
    """(seconds, numerator, denominator) where the meter changes; empty: 4/4 throughout."""
    resolution: int = 220
    """MIDI ticks a quarter note, kept from the file read so that a piece written back keeps its notes' ticks."""

    def note_count(self) -> int:
        return sum(len(track.notes) for track in self.tracks)

    def quarter_notes(self, seconds: np.ndarray) -> np.ndarray:
        """Times in quarter notes from the start through the tempo map, so encodings can ignore the tempo."""
        times, tempi, at_change = self._tempo_segments()
        segment = np.clip(np.searchsorted(times, seconds, side="right") - 1, 0, None)
        return at_change[segment] + (seconds - times[segment]) * tempi[segment] / 60

    def seconds(self, quarters: np.ndarray) -> np.ndarray:
        """Times in seconds of positions in quarter notes: the inverse of `quarter_notes`, to place notes drawn on a
        beat grid into this piece's tempo map."""
        times, tempi, at_change = self._tempo_segments()
        segment = np.clip(np.searchsorted(at_change, quarters, side="right") - 1, 0, None)
        return times[segment] + (quarters - at_change[segment]) * 60 / tempi[segment]

    def _tempo_segments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Where each tempo starts (seconds), the tempo (quarter notes per minute) and its start in quarter notes."""
        changes = self.tempo_changes or ((0.0, self.tempo_bpm),)
        times, tempi = (np.array(column, dtype=np.float64) for column in zip(*changes, strict=True))
        return times, tempi, np.concatenate(([0.0], np.cumsum(np.diff(times) * tempi[:-1] / 60)))

    def end(self) -> float:
        """When the last note ends, in seconds."""
        return max((note.end for track in self.tracks for note in track.notes), default=0.0)

    def bar_lines(self) -> np.ndarray:
        """Where each bar line is, in seconds, from the start to the one that closes the bar the last note ends in:
        bars of the time signatures (4/4 before the first, as MIDI has it), a change in mid-bar starting a new bar."""
        times = np.array([time for time, _, _ in self.time_signatures], dtype=np.float64)
        lengths = {0.0: 4.0}  # quarter notes a bar, from where a time signature starts (in quarter notes)
        for at, (_, numerator, denominator) in zip(self.quarter_notes(times).tolist(), self.time_signatures,
                                                   strict=True):
            lengths[at] = numerator * 4 / denominator
        changes = sorted(lengths)
        end = float(self.quarter_notes(np.array([self.end()]))[0])
        lines: list[float] = []
        for index, position in enumerate(changes):
            until = changes[index + 1] if index + 1 < len(changes) else end
            while position < until - 1e-9:
                lines.append(position)
                position += lengths[changes[index]]
        lines.append(position)  # the last bar's closing line
        return self.seconds(np.array(lines, dtype=np.float64))


def read_score(source: MidiSource, name: str | None = None) -> Score:
    """The notes of a MIDI file (bytes or a path); unreadable, empty or oversized files raise InputError."""
    if isinstance(source, (bytes, bytearray)):
        return _parse(bytes(source), name or "the MIDI data")
    name = name or str(source)
    try:
        size = os.path.getsize(source)
        _check_file_size(size, name)
        with open(source, "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise InputError(f"{name}: cannot read the file ({err.strerror or err}); check the path") from None
    return _parse(data, name)


def _check_file_size(size: int, name: str) -> None:
    if size == 0:
        raise InputError(f"{name} is empty; give a MIDI file with notes in it")
    if size > MAX_FILE_BYTES:
        raise InputError(
            f"{name} is {size / 2**20:.1f} MiB, over the {MAX_FILE_BYTES // 2**20} MiB cap for one MIDI file"
        )


def _parse(data: bytes, name: str) -> Score:
    _check_file_size(len(data), name)
    try:
        midi = mido.MidiFile(file=io.BytesIO(data))
    except Exception as err:  # mido has no error hierarchy: corrupt bytes raise almost any built-in error
        raise InputError(f"{name} is not a readable MIDI file ({_reason(err)})") from None
    _check_events(midi, name)
    midi.tracks = [track for track in midi.tracks if track]  # pretty_midi fails on an empty track
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pretty_midi warns about tempo events outside track 0
            parsed = pretty_midi.PrettyMIDI(mido_object=midi)
    except Exception as err:  # zero tempo, odd meta events, ...: the file is corrupt, not our code
        raise InputError(f"{name} is not a readable MIDI file ({_reason(err)})") from None
    return score_from_pretty_midi(parsed, name)


def _reason(err: Exception) -> str:
    text = str(err).splitlines()[0][:120] if str(err) else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _check_events(midi: mido.MidiFile, name: str) -> None:
    """Refuse what would make pretty_midi slow or huge, before it starts."""
    if midi.ticks_per_beat <= 0:
        raise InputError(f"{name} uses SMPTE or zero time division, which genseq cannot read; re-save it in beats")
    notes = 0
    for track in midi.tracks:
        ticks = sum(message.time for message in track)
        if ticks > MAX_TICKS:
            raise InputError(f"{name} has an event at tick {ticks:,}, past the cap of {MAX_TICKS:,}; it is corrupt")
        notes += sum(1 for message in track if message.type == "note_on" and message.velocity > 0)
    _check_note_count(notes, name)


def _check_note_count(notes: int, name: str) -> None:
    if notes == 0:
        raise InputError(f"{name} has no notes; give a MIDI file with notes in it")
    if notes > MAX_NOTES:
        raise InputError(f"{name} has {notes:,} notes, over the cap of {MAX_NOTES:,} notes per file")


def score_from_pretty_midi(midi: pretty_midi.PrettyMIDI, name: str = "the MIDI object") -> Score:
    """The notes of a PrettyMIDI object, checked against the same caps as a file."""
    tracks = []
    for instrument in midi.instruments:
        notes = sorted(
            (Note(int(n.pitch), float(n.start), float(n.end), int(n.velocity)) for n in instrument.notes),
            key=lambda n: (n.start, n.pitch, n.end),
        )
        for note in notes:
            _check_note(note, name)
        if notes:
            tracks.append(Track(int(instrument.program), bool(instrument.is_drum), tuple(notes), instrument.name))
    times, tempi = midi.get_tempo_changes()
    meters = tuple((float(ts.time), int(ts.numerator), int(ts.denominator)) for ts in midi.time_signature_changes)
    score = Score(tuple(tracks), _initial_tempo(midi), name, tuple(zip(map(float, times), map(float, tempi))), meters,
                  midi.resolution)
    _check_note_count(score.note_count(), name)
    return score


def _check_note(note: Note, name: str) -> None:
    if not (0 <= note.pitch <= 127 and 0 <= note.start <= note.end and 1 <= note.velocity <= 127):
        raise InputError(f"{name} holds an invalid note {note}; pitches and velocities are 0..127, times >= 0")
    if note.end > MAX_SECONDS:
        raise InputError(f"{name} has a note ending at {note.end:,.0f} s, past the cap of {MAX_SECONDS:,} s per file")


def _initial_tempo(midi: pretty_midi.PrettyMIDI) -> float:
    _, tempi = midi.get_tempo_changes()
    return float(tempi[0]) if len(tempi) and tempi[0] > 0 else DEFAULT_TEMPO_BPM


def to_pretty_midi(score: Score) -> pretty_midi.PrettyMIDI:
    """A PrettyMIDI object with one instrument per track, the time signatures and the tempo map, ready to
    `.write(path)`; the notes keep their times in seconds, so their beats and bars follow the tempo map."""
    midi = pretty_midi.PrettyMIDI(resolution=score.resolution, initial_tempo=score.tempo_bpm)
    if score.tempo_changes:
        _set_tempo_map(midi, score.tempo_changes)
    midi.time_signature_changes = [pretty_midi.TimeSignature(n, d, time) for time, n, d in score.time_signatures]
    for track in score.tracks:
        instrument = pretty_midi.Instrument(program=track.program, is_drum=track.is_drum, name=track.name)
        instrument.notes = [pretty_midi.Note(n.velocity, n.pitch, n.start, n.end) for n in track.notes]
        midi.instruments.append(instrument)
    return midi


def _set_tempo_map(midi: pretty_midi.PrettyMIDI, changes: tuple[tuple[float, float], ...]) -> None:
    """Give an empty PrettyMIDI object the tempo map (seconds, bpm); the first tempo holds from the start.

    pretty_midi has no public call for this: its own reader fills `_tick_scales` the same way.
    """
    scales: list[tuple[int, float]] = []
    tick, last_time, last_bpm = 0.0, 0.0, changes[0][1]
    for time, bpm in ((0.0, changes[0][1]), *changes[1:]):
        tick += max(time - last_time, 0.0) * last_bpm / 60 * midi.resolution
        last_time, last_bpm = max(time, last_time), bpm
        scale = (round(tick), 60.0 / (bpm * midi.resolution))
        if scales and scales[-1][0] == scale[0]:
            scales[-1] = scale  # changes within one tick: the last one holds
        else:
            scales.append(scale)
    midi._tick_scales = scales
    midi._update_tick_to_time(0)


def transpose(score: Score, semitones: int) -> Score:
    """`score` moved by `semitones`; drums stay put and pitched notes that would leave 0..127 are dropped."""
    tracks = []
    for track in score.tracks:
        if track.is_drum:
            tracks.append(track)
            continue
        notes = tuple(replace(n, pitch=n.pitch + semitones) for n in track.notes if 0 <= n.pitch + semitones <= 127)
        if notes:
            tracks.append(replace(track, notes=notes))
    return replace(score, tracks=tuple(tracks))


def stretch(score: Score, factor: float) -> Score:
    """`score` played `factor` times as long (slower when factor > 1); the tempo map follows, so the
    notes keep their places in beats and bars."""
    tracks = tuple(
        replace(track, notes=tuple(replace(n, start=n.start * factor, end=n.end * factor) for n in track.notes))
        for track in score.tracks
    )
    tempi = tuple((time * factor, bpm / factor) for time, bpm in score.tempo_changes)
    meters = tuple((time * factor, num, den) for time, num, den in score.time_signatures)
    return replace(score, tracks=tracks, tempo_bpm=score.tempo_bpm / factor, tempo_changes=tempi,
                   time_signatures=meters)
