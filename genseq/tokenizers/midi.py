"""MIDI as performance events (note-on, note-off, time shift, velocity, program), after Magenta's Performance RNN.

Vocabulary, in id order after the three special tokens:
NOTE_ON_p and NOTE_OFF_p for p in 0..127; TIME_SHIFT_<ms> for 1..max_shift_steps steps of
time_shift_ms (longer gaps are several shifts); VELOCITY_b for velocity_bins bins; PROGRAM_n
for General MIDI programs 0..127; DRUMS. A PROGRAM or DRUMS token switches the instrument that
the following note tokens belong to; velocity holds until the next VELOCITY token.
"""

from __future__ import annotations

import bisect
import os
from abc import abstractmethod
from collections import defaultdict, deque
from collections.abc import Hashable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pretty_midi

from genseq.errors import ConfigError, InputError
from genseq.files import atomic_file
from genseq.music.score import MIDI_SUFFIXES, Note, Score, Track, read_score, score_from_pretty_midi, to_pretty_midi
from genseq.tokenizers.base import SPECIAL_TOKENS, Tokenizer

DEFAULT_VELOCITY = 64
"""Velocity of notes a model emits before its first VELOCITY token."""

Instrument = tuple[int, bool]
"""(program, is_drum): tracks with the same pair share one instrument in the token stream."""
StepNote = tuple[int, int, int, int]
"""(pitch, onset, end, velocity) of a decoded note, its times in steps of the encoding's grid."""
KEPT_MARGIN_STEPS = 0.01
"""Slack on the half-step tolerance of `kept_notes`: a time exactly half a step off the grid comes back half a
step off, plus the tiny drift of a tempo stored in whole microseconds (140 bpm is 140.00014 in a file)."""


def instrument_of(track: Track) -> Instrument:
    """Drums are one instrument whatever program the file gave them (players ignore it)."""
    return (0, True) if track.is_drum else (track.program, False)


class MidiEncoding(Tokenizer):
    """What the encodings of MIDI files share: reading documents, the vocabulary table, instrument and
    velocity tokens, and building the decoded file. Subclasses say how notes map to the other tokens."""

    output_suffix: ClassVar[str] = ".mid"
    unit: ClassVar[str] = "event"
    reads_midi: ClassVar[bool] = True

    velocity_bins: int

    def _build_vocabulary(self, segments: Sequence[tuple[str, int]]) -> None:
        """Ids in order after the special tokens: `count` tokens NAME_0.. per segment (one alone: NAME)."""
        self._first: dict[str, int] = {}
        self._single = {name for name, count in segments if count == 1}
        self._table: list[tuple[str, int]] = [(name, 0) for name in SPECIAL_TOKENS]
        for name, count in segments:
            self._first[name] = len(self._table)
            self._table.extend((name, value) for value in range(count))

    @property
    def vocab_size(self) -> int:
        return len(self._table)

    def token_ids(self, name: str) -> range:
        """The ids of one segment of the vocabulary, such as every PITCH token (for rules that mask them)."""
        first = self._first[name]
        last = first + 1
        while last < len(self._table) and self._table[last][0] == name:
            last += 1
        return range(first, last)

    def token_name(self, token_id: int) -> str:
        if not 0 <= token_id < len(self._table):
            return f"<out of range {token_id}>"
        name, value = self._table[token_id]
        if token_id < len(SPECIAL_TOKENS) or name in self._single:
            return name
        return f"{name}_{value}"

    def _tokens(self, ids: Sequence[int]) -> Iterator[tuple[str, int]]:
        """(segment name, value) of each id that is no special token and inside the vocabulary."""
        for token_id in ids:
            if len(SPECIAL_TOKENS) <= token_id < len(self._table):
                yield self._table[token_id]

    def score(self, document: Any) -> Score:
        """The notes of a document: MIDI bytes, a path to a MIDI file, a PrettyMIDI object or a Score."""
        if isinstance(document, Score):
            return document
        if isinstance(document, pretty_midi.PrettyMIDI):
            return score_from_pretty_midi(document)
        if isinstance(document, (bytes, bytearray, os.PathLike)):
            return read_score(document)
        if isinstance(document, str) and Path(document).suffix.lower() in MIDI_SUFFIXES and Path(document).is_file():
            return read_score(document)
        if isinstance(document, str):
            raise InputError("a MIDI model needs a MIDI primer: give a .mid file, not text")
        raise InputError(f"a MIDI model cannot read a {type(document).__name__}; give MIDI bytes, a path or PrettyMIDI")

    def _score_with_notes(self, document: Any) -> tuple[Score, list[Instrument]]:
        """The score of a document to encode and its instruments in token order (drums last)."""
        score = self.score(document)
        if score.note_count() == 0:
            raise InputError(f"{score.name or 'the score'} has no notes; give a MIDI file with notes in it")
        return score, sorted({instrument_of(track) for track in score.tracks}, key=lambda i: (i[1], i[0]))

    def _instrument_token(self, instrument: Instrument) -> int:
        program, is_drum = instrument
        return self._first["DRUMS"] if is_drum else self._first["PROGRAM"] + program

    def _velocity_bin(self, velocity: int) -> int:
        return velocity * self.velocity_bins // 128

    def _bin_velocity(self, bin_: int) -> int:
        """The middle velocity of a bin, so decoding then encoding keeps the bin."""
        return max(1, (2 * bin_ + 1) * 128 // (2 * self.velocity_bins))

    def _to_midi(self, notes: dict[Instrument, list[Note]], **score_fields: Any) -> pretty_midi.PrettyMIDI:
        """The decoded file: one track per instrument, notes in time order."""
        tracks = tuple(Track(program, is_drum, tuple(sorted(found, key=lambda n: (n.start, n.pitch))),
                             "Drums" if is_drum else pretty_midi.program_to_instrument_name(program))
                       for (program, is_drum), found in notes.items())
        return to_pretty_midi(Score(tracks, **score_fields))

    @abstractmethod
    def _grid_steps(self, score: Score, seconds: np.ndarray) -> np.ndarray:
        """Times in seconds as unrounded steps of this encoding's grid, read through `score`'s timing."""

    @property
    @abstractmethod
    def round_trip_tolerance(self) -> str:
        """What `kept_notes` counts as a note kept, in words for a report."""

    def kept_notes(self, original: Any, decoded: Any) -> tuple[int, int]:
        """(notes of `original` that `decoded` holds, notes of `original`): a note is kept when a note of the same
        part (`_parts`: the instrument) and pitch starts and ends within half a grid step of it, the grid read
        through `_round_trip_timing` (the original's: a tempo lost in the round trip shows); each decoded note
        stands for one original note at most."""
        before, after = self.score(original), self.score(decoded)
        found = self._notes_in_steps(after, self._round_trip_timing(before, after))
        kept = sum(_matched(notes, found.get(key, [])) for key, notes in self._notes_in_steps(before, before).items())
        return kept, before.note_count()

    def _round_trip_timing(self, original: Score, decoded: Score) -> Score:
        """The score whose tempo map reads the decoded notes in `kept_notes`: the original's, so a lost tempo shows."""
        return original

    def _parts(self, score: Score) -> list[Hashable]:
        """What each track of `score` is matched by in `kept_notes`: its instrument."""
        return [instrument_of(track) for track in score.tracks]

    def _notes_in_steps(self, score: Score, timing: Score) -> dict[tuple[Hashable, int], list[tuple[float, float]]]:
        """(onset, end) of each note of `score` in grid steps read through `timing`, by part and pitch."""
        notes: dict[tuple[Hashable, int], list[tuple[float, float]]] = defaultdict(list)
        for track, part in zip(score.tracks, self._parts(score), strict=True):
            steps = self._grid_steps(timing, np.array([(n.start, n.end) for n in track.notes])).tolist()
            for note, (onset, end) in zip(track.notes, steps, strict=True):
                notes[(part, note.pitch)].append((onset, end))
        return notes

    def write(self, document: Any, path: str) -> None:
        """Write a decoded document (PrettyMIDI or Score) as a standard MIDI file."""
        midi = to_pretty_midi(document) if isinstance(document, Score) else document
        with atomic_file(path, "MIDI ") as handle:
            midi.write(handle)

    def read_primer(self, path: str) -> Score:
        return read_score(path)


def _matched(notes: list[tuple[float, float]], candidates: list[tuple[float, float]]) -> int:
    """How many (onset, end) `notes` find an unused candidate within half a step at both ends, earliest first."""
    tolerance = 0.5 + KEPT_MARGIN_STEPS
    candidates = sorted(candidates)
    onsets = [onset for onset, _ in candidates]
    used: set[int] = set()
    for onset, end in sorted(notes):
        index = bisect.bisect_left(onsets, onset - tolerance)
        while index < len(candidates) and candidates[index][0] <= onset + tolerance:
            if index not in used and abs(candidates[index][1] - end) <= tolerance:
                used.add(index)
                break
            index += 1
    return len(used)


class MidiTokenizer(MidiEncoding):
    """Timed performance events at a fixed time resolution; the vocabulary is fixed by the settings."""

    kind: ClassVar[str] = "midi"

    def __init__(self, time_shift_ms: int = 10, max_shift_steps: int = 100, velocity_bins: int = 32):
        if not (1 <= time_shift_ms <= 1000 and 1 <= max_shift_steps <= 1000 and 1 <= velocity_bins <= 128):
            raise ConfigError(
                f"MIDI tokenizer settings out of range: time_shift_ms={time_shift_ms} (1..1000), "
                f"max_shift_steps={max_shift_steps} (1..1000), velocity_bins={velocity_bins} (1..128)"
            )
        self.time_shift_ms, self.max_shift_steps, self.velocity_bins = time_shift_ms, max_shift_steps, velocity_bins
        self._build_vocabulary([("NOTE_ON", 128), ("NOTE_OFF", 128), ("TIME_SHIFT", max_shift_steps),
                                ("VELOCITY", velocity_bins), ("PROGRAM", 128), ("DRUMS", 1)])

    def token_name(self, token_id: int) -> str:
        name = super().token_name(token_id)
        if name.startswith("TIME_SHIFT_"):
            return f"TIME_SHIFT_{(self._table[token_id][1] + 1) * self.time_shift_ms}ms"
        return name

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "time_shift_ms": self.time_shift_ms, "max_shift_steps": self.max_shift_steps,
                "velocity_bins": self.velocity_bins}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MidiTokenizer:
        return cls(data["time_shift_ms"], data["max_shift_steps"], data["velocity_bins"])

    def _grid_steps(self, score: Score, seconds: np.ndarray) -> np.ndarray:
        return seconds * 1000 / self.time_shift_ms

    @property
    def round_trip_tolerance(self) -> str:
        return (f"same instrument and pitch, onset and end within half a time step "
                f"({self.time_shift_ms / 2:g} ms)")

    def time_steps(self, score: Score, seconds: Sequence[float]) -> np.ndarray:
        """Time steps of times in seconds, rounded to the nearest (halves to even)."""
        return np.round(np.asarray(seconds, dtype=np.float64) / (self.time_shift_ms / 1000)).astype(np.int64)

    def step_seconds(self, score: Score, steps: Sequence[int]) -> np.ndarray:
        """Times in seconds of time steps (the inverse of `time_steps`)."""
        return np.asarray(steps, dtype=np.float64) * (self.time_shift_ms / 1000)

    def encode(self, document: Any) -> list[int]:
        score, instruments = self._score_with_notes(document)
        ids: list[int] = []
        now, instrument, velocity_bin = 0, None, None
        for step, index, is_on, pitch, velocity in self._events(score, instruments):
            ids.extend(self.time_shifts(step - now))
            now = step
            if index != instrument:
                ids.append(self._instrument_token(instruments[index]))
                instrument = index
            if is_on and self._velocity_bin(velocity) != velocity_bin:
                velocity_bin = self._velocity_bin(velocity)
                ids.append(self._first["VELOCITY"] + velocity_bin)
            ids.append(self._first["NOTE_ON" if is_on else "NOTE_OFF"] + pitch)
        return ids

    def _events(self, score: Score, instruments: list[Instrument]) -> list[tuple[int, int, int, int, int]]:
        """(step, instrument, is_on, pitch, velocity) in token order: per step and instrument, offs first.

        Every note lasts at least one step so its note-off never precedes its note-on.
        """
        index = {instrument: i for i, instrument in enumerate(instruments)}
        events = []
        for track in score.tracks:
            i = index[instrument_of(track)]
            starts = self.time_steps(score, [note.start for note in track.notes]).tolist()
            ends = self.time_steps(score, [note.end for note in track.notes]).tolist()
            for note, start, end in zip(track.notes, starts, ends, strict=True):
                events.append((start, i, 1, note.pitch, note.velocity))
                events.append((max(end, start + 1), i, 0, note.pitch, 0))
        events.sort()
        return events

    def time_shifts(self, steps: int) -> list[int]:
        """The TIME_SHIFT tokens that take a stream `steps` steps on: the longest shift as often as it fits, then the
        rest."""
        whole, rest = divmod(steps, self.max_shift_steps)
        longest = self._first["TIME_SHIFT"] + self.max_shift_steps - 1
        return [longest] * whole + ([self._first["TIME_SHIFT"] + rest - 1] if rest else [])

    def decode(self, ids: Sequence[int]) -> pretty_midi.PrettyMIDI:
        """A PrettyMIDI object for any id sequence: stray note-offs are ignored, open notes end with the piece."""
        seconds_per_step = self.time_shift_ms / 1000
        return self._to_midi({instrument: [Note(pitch, start * seconds_per_step, end * seconds_per_step, velocity)
                                           for pitch, start, end, velocity in found]
                              for instrument, found in self.step_notes(ids).items()})

    def step_notes(self, ids: Sequence[int], until: int | None = None) -> dict[Instrument, list[StepNote]]:
        """The notes of an id sequence in time steps, by instrument: stray note-offs are ignored, notes still open
        end at step `until` (default: where the sequence ends), each at least one step long."""
        now, instrument, velocity = 0, (0, False), DEFAULT_VELOCITY
        sounding: dict[tuple[Instrument, int], deque[tuple[int, int]]] = defaultdict(deque)
        notes: dict[Instrument, list[StepNote]] = {}

        def close(key: tuple[Instrument, int], end: int) -> None:
            start, note_velocity = sounding[key].popleft()
            notes.setdefault(key[0], []).append((key[1], start, max(end, start + 1), note_velocity))

        for name, value in self._tokens(ids):
            if name == "TIME_SHIFT":
                now += value + 1
            elif name == "VELOCITY":
                velocity = self._bin_velocity(value)
            elif name in ("PROGRAM", "DRUMS"):
                instrument = (value, name == "DRUMS")
            elif name == "NOTE_ON":
                sounding[(instrument, value)].append((now, velocity))
            elif sounding[(instrument, value)]:
                close((instrument, value), now)
        for key, queue in sounding.items():
            while queue:
                close(key, now if until is None else until)
        return notes
