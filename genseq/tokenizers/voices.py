"""MIDI as a fixed number of voices written side by side at every grid step, after BachBot and DeepBach.

Each grid step (a sixteenth with steps_per_beat=4; the grid and bars are those of `grid.py`) is one
frame of `voices` tokens in voice order, highest first (Soprano, Alto, Tenor, Bass), so a voice's
previous note is always `voices` tokens back. Vocabulary, in id order after the three special tokens:
BAR (a new bar starts, before its first frame); METER_n (the bars from here on are n steps long, shown as
a time signature such as METER_3/4; before a BAR whose length differs from the last one); PITCH_p for p
in 0..127 (a note starts on this step); HOLD (the voice's note goes on); REST (the voice is silent).

Which track is which voice: with 4 voices, tracks named after the voices (their first word, in any case:
"Soprano", "soprano 1" or "S." is the soprano) when each voice names exactly one track; otherwise, when
the file has exactly `voices` pitched tracks, those ordered by mean pitch, highest first. Other files
cannot be encoded (InputError: training skips and counts them). Drums are never a voice.

Onsets and ends are rounded to the nearest step, and a note lasts at least one step. A voice sounds one
note at a time: a note ends at its own end or at the voice's next onset, whichever comes first, and of
notes starting on one step the highest is kept. The last bar is filled with rests to its end. Tempo,
velocity and programs are not encoded: a decoded piece is at 120 bpm, velocity 64, program 0.

Decoding reads any id sequence: voice tokens fill the slots of a frame in voice order, a BAR or METER in
mid-frame is ignored, an incomplete last frame is dropped, and a HOLD with no note to hold (at the start
or after a REST) is a rest. The file has one track per voice, named after it.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from fractions import Fraction
from typing import Any, ClassVar

import numpy as np
import pretty_midi

from genseq.errors import ConfigError, InputError
from genseq.music.score import DEFAULT_TEMPO_BPM, Note, Score, Track, to_pretty_midi
from genseq.tokenizers.grid import GridEncoding
from genseq.tokenizers.midi import DEFAULT_VELOCITY

FOUR_PART_NAMES = ("Soprano", "Alto", "Tenor", "Bass")
"""Track names of the four voices, highest first, as music21 writes a chorale's parts."""
FOUR_PART_KEYS = {key: voice for voice, name in enumerate(FOUR_PART_NAMES) for key in (name.lower(), name[0].lower())}
"""The first word of a track name (lower case, no trailing dot) that makes it one of the four voices."""


class VoicesTokenizer(GridEncoding):
    """Every voice's state at every grid step, in a fixed voice order; the vocabulary fixed by the settings."""

    kind: ClassVar[str] = "voices"

    def __init__(self, voices: int = 4, steps_per_beat: int = 4, max_bar_beats: int = 8):
        if not (1 <= voices <= 16 and 1 <= steps_per_beat <= 48 and 1 <= max_bar_beats <= 32):
            raise ConfigError(f"voices tokenizer settings out of range: voices={voices} (1..16), "
                              f"steps_per_beat={steps_per_beat} (1..48), max_bar_beats={max_bar_beats} (1..32)")
        self.voices, self.steps_per_beat, self.max_bar_beats = voices, steps_per_beat, max_bar_beats
        self.max_bar_steps = steps_per_beat * max_bar_beats
        self.names = FOUR_PART_NAMES if voices == 4 else tuple(f"Voice {n}" for n in range(1, voices + 1))
        self._build_vocabulary([("BAR", 1), ("METER", self.max_bar_steps), ("PITCH", 128), ("HOLD", 1),
                                ("REST", 1)])

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "voices": self.voices, "steps_per_beat": self.steps_per_beat,
                "max_bar_beats": self.max_bar_beats}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VoicesTokenizer:
        return cls(data["voices"], data["steps_per_beat"], data["max_bar_beats"])

    @property
    def round_trip_tolerance(self) -> str:
        step = Fraction(1, self.steps_per_beat)
        return (f"same voice and pitch, onset and end within half a grid step ({step / 2} beat), each file read "
                "in its own beats (the tempo is not encoded)")

    def _round_trip_timing(self, original: Score, decoded: Score) -> Score:
        return decoded

    def _parts(self, score: Score) -> list[Hashable]:
        """Each track's voice (tracks of no voice get keys no decoded track has, so their notes count as lost)."""
        voice_of = {track: voice for voice, track in (self._voice_tracks(score) or self._named(score)).items()}
        return [voice_of.get(index, ("no voice", index)) for index in range(len(score.tracks))]

    def _named(self, score: Score) -> dict[int, int]:
        """Voice -> track index for the voices that exactly one pitched track is named after."""
        keys = {name.lower(): voice for voice, name in enumerate(self.names)}
        keys |= FOUR_PART_KEYS if self.voices == 4 else {}
        found: dict[int, list[int]] = {}
        for index, track in enumerate(score.tracks):
            words = track.name.lower().split()
            voice = keys.get(" ".join(words), keys.get(words[0].rstrip(".") if words else ""))
            if voice is not None and track.notes and not track.is_drum:
                found.setdefault(voice, []).append(index)
        return {voice: tracks[0] for voice, tracks in found.items() if len(tracks) == 1}

    def _voice_tracks(self, score: Score) -> dict[int, int] | None:
        """Voice -> track index by the rule in the module docstring; None when the file has no such voices."""
        named = self._named(score)
        if len(named) == self.voices:
            return named
        pitched = [index for index, track in enumerate(score.tracks) if track.notes and not track.is_drum]
        if len(pitched) != self.voices:
            return None
        mean_pitch = {index: np.mean([note.pitch for note in score.tracks[index].notes]) for index in pitched}
        return dict(enumerate(sorted(pitched, key=lambda index: -mean_pitch[index])))

    def _grid(self, score: Score, voices: dict[int, int]) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """The voice tokens as a (steps, voices) array of ids, each voice cut to one note at a time, up to the end
        of the last bar; and the bars (first step, length)."""
        spans = []
        for voice in range(self.voices):
            notes = score.tracks[voices[voice]].notes
            starts = self.time_steps(score, [note.start for note in notes])
            ends = np.maximum(self.time_steps(score, [note.end for note in notes]), starts + 1)
            pitches = np.array([note.pitch for note in notes], dtype=np.int64)
            order = np.lexsort((pitches, starts))
            starts, ends, pitches = starts[order], ends[order], pitches[order]
            last_of_step = np.append(starts[1:] != starts[:-1], True)  # the highest of the notes starting there
            starts, ends, pitches = starts[last_of_step], ends[last_of_step], pitches[last_of_step]
            spans.append((starts, np.minimum(ends, np.append(starts[1:], ends[-1:])), pitches))
        length = max(int(ends.max()) for _, ends, _ in spans)
        bars = self.grid_bars(score, length - 1)
        frames = np.full((bars[-1][0] + bars[-1][1], self.voices), self._first["REST"])
        for voice, (starts, ends, pitches) in enumerate(spans):
            for start, end, pitch in zip(starts.tolist(), ends.tolist(), pitches.tolist()):
                frames[start, voice] = self._first["PITCH"] + pitch
                frames[start + 1:end, voice] = self._first["HOLD"]
        return frames, bars

    def encode(self, document: Any) -> list[int]:
        score, _ = self._score_with_notes(document)
        voices = self._voice_tracks(score)
        if voices is None:
            names = ", ".join(track.name or "unnamed" for track in score.tracks)
            raise InputError(f"{score.name or 'the score'} has {len(score.tracks)} track(s) ({names}); the voices "
                             f"tokenizer needs {self.voices} pitched tracks, or tracks named "
                             f"{', '.join(self.names)}")
        frames, bars = self._grid(score, voices)
        ids: list[int] = []
        meter = None
        for start, length in bars:
            if length != meter:
                meter = length
                ids.append(self._first["METER"] + length - 1)
            ids.append(self._first["BAR"])
            ids += frames[start:start + length].ravel().tolist()
        return ids

    def frames(self, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Each grid step of an id sequence as it sounds: the pitch of every voice (-1 where silent) [steps, voices],
        as `decode` reads it (a HOLD with no note is a rest); and the index in `ids` of each step's first voice
        token [steps]."""
        voice_ids = range(self._first["PITCH"], self._first["REST"] + 1)
        at = [index for index, token in enumerate(ids) if token in voice_ids]
        steps = len(at) // self.voices
        pitches = np.full((steps, self.voices), -1, dtype=np.int64)
        sounding = [-1] * self.voices
        for step in range(steps):
            for voice in range(self.voices):
                token = ids[at[step * self.voices + voice]]
                if token != self._first["HOLD"]:
                    sounding[voice] = token - self._first["PITCH"] if token < self._first["HOLD"] else -1
                pitches[step, voice] = sounding[voice]
        return pitches, np.array(at[::self.voices][:steps], dtype=np.int64)

    def decode(self, ids: Sequence[int]) -> pretty_midi.PrettyMIDI:
        """A PrettyMIDI object with one named track per voice for any id sequence (rules in the module docstring)."""
        seconds_per_step = 60 / DEFAULT_TEMPO_BPM / self.steps_per_beat
        notes: list[list[Note]] = [[] for _ in range(self.voices)]
        sounding: list[tuple[int, int] | None] = [None] * self.voices  # (pitch, onset step) of each voice
        frame: list[tuple[str, int]] = []
        step, meter = 0, self.default_bar_steps
        meters: list[tuple[int, int]] = []

        def close(voice: int) -> None:
            if sounding[voice] is not None:
                pitch, onset = sounding[voice]
                notes[voice].append(Note(pitch, onset * seconds_per_step, step * seconds_per_step, DEFAULT_VELOCITY))
                sounding[voice] = None

        for name, value in self._tokens(ids):
            if name in ("PITCH", "HOLD", "REST"):
                frame.append((name, value))
                if len(frame) < self.voices:
                    continue
                for voice, (state, pitch) in enumerate(frame):
                    if state != "HOLD":
                        close(voice)
                    if state == "PITCH":
                        sounding[voice] = (pitch, step)
                frame, step = [], step + 1
            elif frame:
                continue  # a bar line or meter in mid-frame
            elif name == "METER":
                meter = value + 1
            elif name == "BAR" and (not meters or meters[-1][1] != meter):
                meters.append((step, meter))
        for voice in range(self.voices):
            close(voice)
        tracks = tuple(Track(0, False, tuple(found), name) for found, name in zip(notes, self.names, strict=True))
        signatures = tuple((start * seconds_per_step, *meter) for start, length in meters
                           if (meter := self._time_signature(length)))
        return to_pretty_midi(Score(tracks, time_signatures=signatures))
