"""Part-writing rules of four-voice chorales, counted on the notes of a piece whatever its tracks.

The voices are followed through the piece's four-note sonorities: a note held from one sonority to
the next keeps its voice; new notes take the free voices from the top down (soprano first). So
voices that cross while one of them holds a note are seen; all four moving across each other at
once is not. A piece written on one instrument (as genseq's chorale models write) and one written
on four tracks are judged alike.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

import numpy as np

from genseq.judge.features import Notes
from genseq.music.theory import PARALLEL_INTERVALS, VOICE_RANGES


@dataclass
class ChoraleCounts:
    notes: int = 0
    parallels: int = 0
    """Parallel fifths or octaves (unisons included): two voices moving the same way from one such interval
    to the same interval class again."""
    out_of_range: int = 0
    four_voice_sonorities: int = 0
    crossings: int = 0
    """Four-voice sonorities where a lower voice sounds above a higher one."""
    four_voice_beats: float = 0.0
    sounding_beats: float = 0.0

    def add(self, other: ChoraleCounts) -> ChoraleCounts:
        return ChoraleCounts(*(getattr(self, f) + getattr(other, f) for f in self.__dataclass_fields__))


def sonorities(notes: Notes) -> list[tuple[float, float, np.ndarray]]:
    """(start, end, indices of the notes sounding) between consecutive note starts and ends."""
    times = np.unique(np.concatenate([notes.start, notes.end]))
    sounding = (notes.start[None, :] <= times[:-1, None]) & (notes.end[None, :] > times[:-1, None])
    return [(times[k], times[k + 1], np.flatnonzero(sounding[k])) for k in range(len(times) - 1)
            if sounding[k].any()]


def _assign(indices: np.ndarray, pitches: np.ndarray, voice_of: dict[int, int]) -> np.ndarray:
    """The sounding notes' pitches ordered by voice (soprano first), updating `voice_of` for new notes."""
    held = [i for i in indices if i in voice_of]
    free = sorted(set(range(4)) - {voice_of[i] for i in held})
    new = sorted((i for i in indices if i not in voice_of), key=lambda i: -pitches[i])
    if len(free) != len(new):  # voices lost track (a voice doubled or dropped): start again from the top down
        new, free = sorted(indices, key=lambda i: -pitches[i]), list(range(4))
    voice_of.update(zip(new, free, strict=True))
    by_voice = np.zeros(4, dtype=int)
    for i in indices:
        by_voice[voice_of[i]] = pitches[i]
    return by_voice


def chorale_counts(notes: Notes) -> ChoraleCounts:
    counts = ChoraleCounts(notes=len(notes))
    voice_of: dict[int, int] = {}
    previous, previous_end = None, None
    for start, end, indices in sonorities(notes):
        counts.sounding_beats += end - start
        if len(indices) != 4:
            previous = None
            continue
        counts.four_voice_beats += end - start
        voices = _assign(indices, notes.pitch, voice_of)
        counts.four_voice_sonorities += 1
        counts.crossings += bool(np.any(np.diff(voices) > 0))
        if previous is not None and previous_end == start:
            counts.parallels += _parallels(previous, voices)
        previous, previous_end = voices, end
    for index, pitch in enumerate(notes.pitch):
        low, high = VOICE_RANGES[voice_of[index]] if index in voice_of else (VOICE_RANGES[3][0], VOICE_RANGES[0][1])
        counts.out_of_range += not low <= pitch <= high
    return counts


def _parallels(before: np.ndarray, after: np.ndarray) -> int:
    return sum(parallel(before[upper], before[lower], after[upper], after[lower])
               for upper in range(4) for lower in range(upper + 1, 4))


def parallel(upper_before: int, lower_before: int, upper_after: int, lower_after: int) -> bool:
    """Whether two voices move the same way from a fifth or octave (unison) to the same interval class again."""
    motion = np.sign(upper_after - upper_before)
    interval = (upper_before - lower_before) % 12
    return bool(motion != 0 and motion == np.sign(lower_after - lower_before) and interval in PARALLEL_INTERVALS
                and (upper_after - lower_after) % 12 == interval)


def grid_faults(pitches: np.ndarray, steps: Iterable[int], voices: Collection[int]) -> tuple[int, int]:
    """Parallel fifths or octaves into, and crossed voices on, each of `steps` of a voice grid (pitches [steps,
    voices], highest voice first, -1 where silent: `VoicesTokenizer.frames`), between pairs of voices at least one
    of which is in `voices`: what a fill of those voices introduced there."""
    parallels = crossings = 0
    for step in steps:
        now, before = pitches[step], pitches[step - 1] if step > 0 else None
        for upper in range(len(now)):
            for lower in range(upper + 1, len(now)):
                if (upper not in voices and lower not in voices) or now[upper] < 0 or now[lower] < 0:
                    continue
                crossings += bool(now[lower] > now[upper])
                if before is not None and before[upper] >= 0 and before[lower] >= 0:
                    parallels += parallel(before[upper], before[lower], now[upper], now[lower])
    return parallels, crossings
