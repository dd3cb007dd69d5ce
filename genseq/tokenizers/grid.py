"""The beat grid that the bar-based MIDI encodings share: times as steps of a beat, bars from the time signatures.

A beat is a quarter note (read through the file's tempo map), cut into steps_per_beat steps. Bars come
from the file's time signatures (4/4 where it has none); a change in mid-bar starts a new bar there. A
bar longer than max_bar_beats is split into the fewest equal parts that fit (12/4 becomes two bars of
6/4). METER_n tokens (n steps a bar) are named as the time signature they stand for, such as METER_3/4.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from genseq.errors import InputError
from genseq.music.score import Score
from genseq.tokenizers.midi import MidiEncoding

MAX_BARS = 20_000
"""Bars in one file; a long symphony movement has a few hundred, so more means corrupt tempos or meters."""
DEFAULT_METER_BEATS = 4
"""Beats in a bar before the first time signature (4/4)."""


class GridEncoding(MidiEncoding):
    """Steps, bars and meters for encodings whose vocabulary has a METER segment of max_bar_steps tokens."""

    steps_per_beat: int
    max_bar_steps: int

    def token_name(self, token_id: int) -> str:
        segment, value = self._table[token_id] if 0 <= token_id < len(self._table) else ("", 0)
        if segment == "METER":
            meter = self._time_signature(value + 1)
            return f"METER_{meter[0]}/{meter[1]}" if meter else f"METER_{value + 1}_steps"
        return super().token_name(token_id)

    def _grid_steps(self, score: Score, seconds: np.ndarray) -> np.ndarray:
        return score.quarter_notes(seconds) * self.steps_per_beat

    def time_steps(self, score: Score, seconds: Sequence[float]) -> np.ndarray:
        """Grid steps of times in seconds, rounded half up (a tiny margin keeps exact halves from float noise)."""
        quarters = score.quarter_notes(np.asarray(seconds, dtype=np.float64))
        return np.floor(quarters * self.steps_per_beat + 0.5 + 1e-6).astype(np.int64)

    def step_seconds(self, score: Score, steps: Sequence[int]) -> np.ndarray:
        """Times in seconds of grid steps, through `score`'s tempo map (the inverse of `time_steps`)."""
        return score.seconds(np.asarray(steps, dtype=np.float64) / self.steps_per_beat)

    def _bar_lengths(self, numerator: int, denominator: int) -> list[int]:
        """Steps of the bars one time signature makes: one bar, or the fewest equal parts of at most max_bar_beats."""
        steps = max(1, round(numerator * 4 / denominator * self.steps_per_beat))
        parts = math.ceil(steps / self.max_bar_steps)
        size, longer = divmod(steps, parts)
        return [size + 1] * longer + [size] * (parts - longer)

    @property
    def default_bar_steps(self) -> int:
        """Steps of a bar before the first time signature or METER token."""
        return self._bar_lengths(DEFAULT_METER_BEATS, 4)[0]

    def grid_bars(self, score: Score, last_onset: int) -> list[tuple[int, int]]:
        """(first step, length in steps) of every bar up to the one holding `last_onset`."""
        meters = {0: self._bar_lengths(DEFAULT_METER_BEATS, 4)}
        starts = self.time_steps(score, [time for time, _, _ in score.time_signatures])
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

    def _time_signature(self, steps: int) -> tuple[int, int] | None:
        """The time signature of a bar `steps` long, with the smallest power-of-two denominator from 4 up;
        None when no MIDI time signature fits (a steps_per_beat with an odd factor)."""
        for denominator in (4, 8, 16, 32, 64):
            numerator, rest = divmod(steps * denominator, 4 * self.steps_per_beat)
            if not rest:
                return (numerator, denominator) if numerator <= 255 else None
        return None
