"""MIDI as notes on a beat grid with bar lines, and the tempo map as tokens of its own.

A beat is a quarter note (MIDI ticks / resolution, read through the file's tempo map), cut into
steps_per_beat grid steps. Vocabulary, in id order after the three special tokens:
BAR (a new bar starts); METER_n (the bars from here on are n steps long, shown as a time signature
such as METER_3/4; emitted before a BAR whose length differs from the last one); POS_k (onset k
steps into the bar); PROGRAM_n for General MIDI programs 0..127 and DRUMS (the instrument of the
notes that follow, emitted when it changes); VELOCITY_b for velocity_bins bins (emitted when it
changes); PITCH_p for p in 0..127, each followed by DUR_d (d = 1..steps_per_beat * max_duration_beats
steps); with `tempo`, then TEMPO_t for whole bpm t = 20..300 and TEMPO_+f/32 for f = 1..31 (the
tempo from this position on is t + f/32 bpm; the fraction token follows its TEMPO and is left out when
it is 0).

Bars and steps are those of `grid.py` (the file's time signatures, 4/4 where it has none). Onsets and
offsets are rounded to the nearest step, durations are at least one step and at most max_duration_beats
(longer notes are cut).

Tempo: one TEMPO at the first bar's start and one at each grid step (its bar's POS) where the binned
tempo changes, up to the last onset. A tempo is clamped to 20..300 31/32 bpm and rounded to the
nearest 1/32 bpm, so it comes back within 1/64 bpm: onsets drift by at most 1/64 beat per minute of
music, half a sixteenth (1/8 beat) after 8 minutes, and not at all for tempi on the 1/32 bpm grid
(integer bpm among them). Decoding plays each step at its tempo, 120 bpm before the first TEMPO (a
piece without one, and every piece of a tokenizer without `tempo`, is at 120 bpm throughout).
Without `tempo` the tokens are those of the same score at any tempo.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any, ClassVar

import pretty_midi

from genseq.errors import ConfigError
from genseq.music.score import DEFAULT_TEMPO_BPM, Note, Score
from genseq.tokenizers.grid import GridEncoding
from genseq.tokenizers.midi import DEFAULT_VELOCITY, Instrument, StepNote, instrument_of

MIN_TEMPO_BPM, MAX_TEMPO_BPM = 20, 300
"""Whole bpm of the TEMPO tokens; tempi outside are clamped (a 10 bpm file comes back at 20 bpm)."""
TEMPO_FRACTIONS = 32
"""A TEMPO is t + f / TEMPO_FRACTIONS bpm: wide enough a bin that most files need one token per tempo."""


class BeatTokenizer(GridEncoding):
    """Notes on a grid of steps per beat inside bars, with tempo tokens if `tempo`; the vocabulary fixed by the
    settings. `tempo` is recorded in `to_dict`; a saved config without it (genseq before tempo tokens) means off."""

    kind: ClassVar[str] = "beat"

    def __init__(self, steps_per_beat: int = 4, max_bar_beats: int = 8, max_duration_beats: int = 16,
                 velocity_bins: int = 32, tempo: bool = True):
        if not (1 <= steps_per_beat <= 48 and 1 <= max_bar_beats <= 32 and 1 <= max_duration_beats <= 64
                and 1 <= velocity_bins <= 128):
            raise ConfigError(
                f"beat tokenizer settings out of range: steps_per_beat={steps_per_beat} (1..48), "
                f"max_bar_beats={max_bar_beats} (1..32), max_duration_beats={max_duration_beats} (1..64), "
                f"velocity_bins={velocity_bins} (1..128)"
            )
        self.steps_per_beat, self.max_bar_beats = steps_per_beat, max_bar_beats
        self.max_duration_beats, self.velocity_bins, self.tempo = max_duration_beats, velocity_bins, tempo
        self.max_bar_steps = steps_per_beat * max_bar_beats
        self.max_duration_steps = steps_per_beat * max_duration_beats
        tempo_tokens = [("TEMPO", MAX_TEMPO_BPM - MIN_TEMPO_BPM + 1), ("TEMPO_FRACTION", TEMPO_FRACTIONS - 1)]
        self._build_vocabulary([("BAR", 1), ("METER", self.max_bar_steps), ("POS", self.max_bar_steps),
                                ("PROGRAM", 128), ("DRUMS", 1), ("VELOCITY", velocity_bins), ("PITCH", 128),
                                ("DUR", self.max_duration_steps), *(tempo_tokens if tempo else [])])

    def token_name(self, token_id: int) -> str:
        name = super().token_name(token_id)
        segment, value = self._table[token_id] if 0 <= token_id < len(self._table) else ("", 0)
        if segment == "DUR":
            return f"DUR_{value + 1}"
        if segment == "TEMPO":
            return f"TEMPO_{value + MIN_TEMPO_BPM}"
        if segment == "TEMPO_FRACTION":
            return f"TEMPO_+{value + 1}/{TEMPO_FRACTIONS}"
        return name

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "steps_per_beat": self.steps_per_beat, "max_bar_beats": self.max_bar_beats,
                "max_duration_beats": self.max_duration_beats, "velocity_bins": self.velocity_bins,
                "tempo": self.tempo}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BeatTokenizer:
        return cls(data["steps_per_beat"], data["max_bar_beats"], data["max_duration_beats"], data["velocity_bins"],
                   data.get("tempo", False))

    @property
    def round_trip_tolerance(self) -> str:
        step = Fraction(1, self.steps_per_beat)
        return (f"same instrument and pitch, onset and end within half a grid step ({step / 2} beat) in the "
                "original's beats")

    def _events(self, score: Score, instruments: list[Instrument]) -> list[tuple[int, int, int, int, int]]:
        """(onset step, instrument, pitch, duration in steps, velocity) in token order."""
        index = {instrument: i for i, instrument in enumerate(instruments)}
        events = []
        for track in score.tracks:
            starts = self.time_steps(score, [note.start for note in track.notes]).tolist()
            ends = self.time_steps(score, [note.end for note in track.notes]).tolist()
            for note, start, end in zip(track.notes, starts, ends, strict=True):
                duration = min(max(end - start, 1), self.max_duration_steps)
                events.append((start, index[instrument_of(track)], note.pitch, duration, note.velocity))
        events.sort()
        return events

    def _tempo_events(self, score: Score, last_onset: int) -> list[tuple[int, int, int, int, int]]:
        """(step, -1, tempo in 1/32 bpm, 0, 0) at the start and where the binned tempo changes, up to
        `last_onset`; of changes on one step the last holds, and -1 sorts them before that step's notes."""
        changes = score.tempo_changes or ((0.0, score.tempo_bpm),)
        at_step = dict(zip([0, *self.time_steps(score, [time for time, _ in changes[1:]]).tolist()],
                           (self._tempo_units(bpm) for _, bpm in changes), strict=True))
        events, current = [], None
        for step in sorted(at_step):
            if step <= last_onset and at_step[step] != current:
                current = at_step[step]
                events.append((step, -1, current, 0, 0))
        return events

    @staticmethod
    def _tempo_units(bpm: float) -> int:
        """A tempo clamped to the TEMPO range, in 1/TEMPO_FRACTIONS bpm (rounded to the nearest)."""
        highest = MAX_TEMPO_BPM + (TEMPO_FRACTIONS - 1) / TEMPO_FRACTIONS
        return round(min(max(bpm, MIN_TEMPO_BPM), highest) * TEMPO_FRACTIONS)

    def encode(self, document: Any) -> list[int]:
        score, instruments = self._score_with_notes(document)
        events = self._events(score, instruments)
        bars = self.grid_bars(score, events[-1][0])
        if self.tempo:
            events = sorted(events + self._tempo_events(score, events[-1][0]))
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
            if index < 0:  # a tempo: `pitch` holds it in 1/32 bpm
                whole, fraction = divmod(pitch, TEMPO_FRACTIONS)
                ids.append(self._first["TEMPO"] + whole - MIN_TEMPO_BPM)
                ids += [self._first["TEMPO_FRACTION"] + fraction - 1] if fraction else []
                continue
            if index != instrument:
                instrument = index
                ids.append(self._instrument_token(instruments[index]))
            if self._velocity_bin(velocity) != velocity_bin:
                velocity_bin = self._velocity_bin(velocity)
                ids.append(self._first["VELOCITY"] + velocity_bin)
            ids += [self._first["PITCH"] + pitch, self._first["DUR"] + duration - 1]
        return ids

    def decode(self, ids: Sequence[int]) -> pretty_midi.PrettyMIDI:
        """A PrettyMIDI object for any id sequence, at the tempi its TEMPO tokens give (120 bpm before the first):
        a PITCH not followed by a DUR is dropped, and so is a TEMPO_+f/32 that does not follow a TEMPO."""
        notes, meters, tempi = self._read(ids)
        seconds, tempo_map = self._clock(tempi)
        timed = {key: [Note(p, seconds(start), seconds(end), v) for p, start, end, v in found]
                 for key, found in notes.items()}
        signatures = tuple((seconds(start), *self._time_signature(length))
                           for start, length in meters if self._time_signature(length))
        return self._to_midi(timed, time_signatures=signatures, **tempo_map)

    def step_notes(self, ids: Sequence[int], until: int | None = None) -> dict[Instrument, list[StepNote]]:
        """The notes of an id sequence in grid steps, by instrument (each lasts as its DUR says: `until` is unused,
        kept for the performance encoding's open notes)."""
        return self._read(ids)[0]

    def _read(self, ids: Sequence[int]) -> tuple[dict[Instrument, list[StepNote]], list[tuple[int, int]],
                                                  dict[int, float]]:
        """The notes of an id sequence in grid steps, where the bar length changes (step, steps a bar) and the
        tempi (step: bpm)."""
        meter = self.default_bar_steps
        bar_start, bar_length, position, pitch, tempo_step = 0, 0, 0, None, None
        instrument, velocity = (0, False), DEFAULT_VELOCITY
        notes: dict[Instrument, list[StepNote]] = {}
        meters: list[tuple[int, int]] = []
        tempi: dict[int, float] = {}
        for name, value in self._tokens(ids):
            if name == "DUR" and pitch is not None:
                onset = bar_start + position
                notes.setdefault(instrument, []).append((pitch, onset, onset + value + 1, velocity))
            elif name == "TEMPO":
                tempo_step = bar_start + position
                tempi[tempo_step] = float(value + MIN_TEMPO_BPM)  # the last tempo written for a step holds
            elif name == "TEMPO_FRACTION" and tempo_step is not None:
                tempi[tempo_step] += (value + 1) / TEMPO_FRACTIONS
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
            tempo_step = tempo_step if name == "TEMPO" else None
        return notes, meters, tempi

    def _clock(self, tempi: dict[int, float]) -> tuple[Callable[[int], float], dict[str, Any]]:
        """Seconds of a grid step under the decoded tempi (step: bpm), and the Score fields of that tempo map
        (none without tempi: the file is written at 120 bpm, as before tempo tokens)."""
        points = [(0, 0.0, DEFAULT_TEMPO_BPM)]  # (step, seconds, bpm) where a tempo starts
        for step in sorted(tempi):
            start, at, bpm = points[-1]
            point = (step, at + (step - start) * (60 / bpm / self.steps_per_beat), tempi[step])
            points[-1:] = [point] if step == start else [points[-1], point]
        starts = [step for step, _, _ in points]

        def seconds(step: int) -> float:
            start, at, bpm = points[bisect.bisect_right(starts, step) - 1]
            return at + (step - start) * (60 / bpm / self.steps_per_beat)

        if not tempi:
            return seconds, {}
        return seconds, {"tempo_bpm": points[0][2], "tempo_changes": tuple((at, bpm) for _, at, bpm in points)}
