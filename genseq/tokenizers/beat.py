"""MIDI as notes on a beat grid with bar lines: the same score encodes the same at any tempo.

A beat is a quarter note (MIDI ticks / resolution, read through the file's tempo map), cut into
steps_per_beat grid steps. Vocabulary, in id order after the three special tokens:
BAR (a new bar starts); METER_n (the bars from here on are n steps long, shown as a time signature
such as METER_3/4; emitted before a BAR whose length differs from the last one); POS_k (onset k
steps into the bar); PROGRAM_n for General MIDI programs 0..127 and DRUMS (the instrument of the
notes that follow, emitted when it changes); VELOCITY_b for velocity_bins bins (emitted when it
changes); PITCH_p for p in 0..127, each followed by DUR_d (d = 1..steps_per_beat * max_duration_beats
steps).

Bars come from the file's time signatures (4/4 where it has none); a change in mid-bar starts a
new bar there. A bar longer than max_bar_beats is split into the fewest equal parts that fit
(12/4 becomes two bars of 6/4). Onsets and offsets are rounded to the nearest step, durations are
at least one step and at most max_duration_beats (longer notes are cut). Decoding writes 120 bpm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pretty_midi

from genseq.errors import ConfigError, InputError
from genseq.music import DEFAULT_TEMPO_BPM, Note, Score
from genseq.tokenizers.midi import DEFAULT_VELOCITY, Instrument, MidiEncoding, instrument_of

MAX_BARS = 20_000
"""Bars in one file; a long symphony movement has a few hundred, so more means corrupt tempos or meters."""
DEFAULT_METER_BEATS = 4
"""Beats in a bar before the first time signature (4/4)."""


class BeatTokenizer(MidiEncoding):
    """Notes on a grid of steps per beat inside bars; tempo-independent, the vocabulary fixed by the settings."""

    kind: ClassVar[str] = "beat"

    def __init__(self, steps_per_beat: int = 4, max_bar_beats: int = 8, max_duration_beats: int = 16,
                 velocity_bins: int = 32):
        if not (1 <= steps_per_beat <= 48 and 1 <= max_bar_beats <= 32 and 1 <= max_duration_beats <= 64
                and 1 <= velocity_bins <= 128):
            raise ConfigError(
                f"beat tokenizer settings out of range: steps_per_beat={steps_per_beat} (1..48), "
                f"max_bar_beats={max_bar_beats} (1..32), max_duration_beats={max_duration_beats} (1..64), "
                f"velocity_bins={velocity_bins} (1..128)"
            )
        self.steps_per_beat, self.max_bar_beats = steps_per_beat, max_bar_beats
        self.max_duration_beats, self.velocity_bins = max_duration_beats, velocity_bins
        self.max_bar_steps = steps_per_beat * max_bar_beats
        self.max_duration_steps = steps_per_beat * max_duration_beats
        self._build_vocabulary([("BAR", 1), ("METER", self.max_bar_steps), ("POS", self.max_bar_steps),
                                ("PROGRAM", 128), ("DRUMS", 1), ("VELOCITY", velocity_bins), ("PITCH", 128),
                                ("DUR", self.max_duration_steps)])

    def token_name(self, token_id: int) -> str:
        name = super().token_name(token_id)
        if name.startswith("METER_"):
            meter = self._time_signature(self._table[token_id][1] + 1)
            return f"METER_{meter[0]}/{meter[1]}" if meter else f"METER_{self._table[token_id][1] + 1}_steps"
        if name.startswith("DUR_"):
            return f"DUR_{self._table[token_id][1] + 1}"
        return name

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "steps_per_beat": self.steps_per_beat, "max_bar_beats": self.max_bar_beats,
                "max_duration_beats": self.max_duration_beats, "velocity_bins": self.velocity_bins}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BeatTokenizer:
        return cls(data["steps_per_beat"], data["max_bar_beats"], data["max_duration_beats"], data["velocity_bins"])

    def _steps(self, score: Score, seconds: Sequence[float]) -> np.ndarray:
        """Grid steps of times in seconds, rounded half up (a tiny margin keeps exact halves from float noise)."""
        quarters = score.quarter_notes(np.asarray(seconds, dtype=np.float64))
        return np.floor(quarters * self.steps_per_beat + 0.5 + 1e-6).astype(np.int64)

    def _bar_lengths(self, numerator: int, denominator: int) -> list[int]:
        """Steps of the bars one time signature makes: one bar, or the fewest equal parts of at most max_bar_beats."""
        steps = max(1, round(numerator * 4 / denominator * self.steps_per_beat))
        parts = math.ceil(steps / self.max_bar_steps)
        size, longer = divmod(steps, parts)
        return [size + 1] * longer + [size] * (parts - longer)

    def _bars(self, score: Score, last_onset: int) -> list[tuple[int, int]]:
        """(first step, length in steps) of every bar up to the one holding `last_onset`."""
        meters = {0: self._bar_lengths(DEFAULT_METER_BEATS, 4)}
        starts = self._steps(score, [time for time, _, _ in score.time_signatures])
        for start, (_, numerator, denominator) in zip(starts.tolist(), score.time_signatures, strict=True):
            meters[start] = self._bar_lengths(numerator, denominator)
        changes = sorted(meters)
        bars: list[tuple[int, int]] = []
        for index, start in enumerate(changes):
            end = changes[index + 1] if index + 1 < len(changes) else math.inf
            pattern, count = meters[start], 0
            while start < end and start <= last_onset:
                length = int(min(pattern[count % len(pattern)], end - start))
                bars.append((start, length))
                start, count = start + length, count + 1
                if len(bars) > MAX_BARS:
                    raise InputError(f"{score.name or 'the score'} has over {MAX_BARS:,} bars, the cap per file; "
                                     "its tempo map or time signatures are corrupt")
        return bars

    def _events(self, score: Score, instruments: list[Instrument]) -> list[tuple[int, int, int, int, int]]:
        """(onset step, instrument, pitch, duration in steps, velocity) in token order."""
        index = {instrument: i for i, instrument in enumerate(instruments)}
        events = []
        for track in score.tracks:
            starts = self._steps(score, [note.start for note in track.notes]).tolist()
            ends = self._steps(score, [note.end for note in track.notes]).tolist()
            for note, start, end in zip(track.notes, starts, ends, strict=True):
                duration = min(max(end - start, 1), self.max_duration_steps)
                events.append((start, index[instrument_of(track)], note.pitch, duration, note.velocity))
        events.sort()
        return events

    def encode(self, document: Any) -> list[int]:
        score, instruments = self._score_with_notes(document)
        events = self._events(score, instruments)
        bars = self._bars(score, events[-1][0])
        ids: list[int] = []
        bar, meter, position, instrument, velocity_bin = -1, None, None, None, None
        for onset, index, pitch, duration, velocity in events:
            while bar + 1 < len(bars) and bars[bar + 1][0] <= onset:
                bar += 1
                if bars[bar][1] != meter:
                    meter = bars[bar][1]
                    ids.append(self._first["METER"] + meter - 1)
                ids.append(self._first["BAR"])
                position = None
            if onset - bars[bar][0] != position:
                position = onset - bars[bar][0]
                ids.append(self._first["POS"] + position)
            if index != instrument:
                instrument = index
                ids.append(self._instrument_token(instruments[index]))
            if self._velocity_bin(velocity) != velocity_bin:
                velocity_bin = self._velocity_bin(velocity)
                ids.append(self._first["VELOCITY"] + velocity_bin)
            ids += [self._first["PITCH"] + pitch, self._first["DUR"] + duration - 1]
        return ids

    def decode(self, ids: Sequence[int]) -> pretty_midi.PrettyMIDI:
        """A PrettyMIDI object at 120 bpm for any id sequence: a PITCH not followed by a DUR is dropped."""
        seconds_per_step = 60 / DEFAULT_TEMPO_BPM / self.steps_per_beat
        meter = self._bar_lengths(DEFAULT_METER_BEATS, 4)[0]
        bar_start, bar_length, position, pitch = 0, 0, 0, None
        instrument, velocity = (0, False), DEFAULT_VELOCITY
        notes: dict[Instrument, list[Note]] = {}
        meters: list[tuple[int, int]] = []
        for name, value in self._tokens(ids):
            if name == "DUR" and pitch is not None:
                onset = bar_start + position
                note = Note(pitch, onset * seconds_per_step, (onset + value + 1) * seconds_per_step, velocity)
                notes.setdefault(instrument, []).append(note)
            elif name == "METER":
                meter = value + 1
            elif name == "BAR":
                bar_start, bar_length, position = bar_start + bar_length, meter, 0
                if not meters or meters[-1][1] != meter:
                    meters.append((bar_start, meter))
            elif name == "POS":
                position = value
            elif name in ("PROGRAM", "DRUMS"):
                instrument = (value, name == "DRUMS")
            elif name == "VELOCITY":
                velocity = self._bin_velocity(value)
            pitch = value if name == "PITCH" else None
        signatures = tuple((start * seconds_per_step, *self._time_signature(length))
                           for start, length in meters if self._time_signature(length))
        return self._to_midi(notes, time_signatures=signatures)

    def _time_signature(self, steps: int) -> tuple[int, int] | None:
        """The time signature of a bar `steps` long, with the smallest power-of-two denominator from 4 up;
        None when no MIDI time signature fits (a steps_per_beat with an odd factor)."""
        for denominator in (4, 8, 16, 32, 64):
            numerator, rest = divmod(steps * denominator, 4 * self.steps_per_beat)
            if not rest:
                return (numerator, denominator) if numerator <= 255 else None
        return None
