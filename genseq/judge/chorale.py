"""Part-writing rules of four-voice chorales, counted on the notes of a piece whatever its tracks.

The voices are followed through the piece's four-note sonorities: a note held from one sonority to
the next keeps its voice; new notes take the free voices from the top down (soprano first). So
voices that cross while one of them holds a note are seen; all four moving across each other at
once is not. A piece written on one instrument (as genseq's chorale models write) and one written
on four tracks are judged alike.
"""

from __future__ import annotations

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
    found = 0
    motion = np.sign(after - before)
    for upper in range(4):
        for lower in range(upper + 1, 4):
            interval = (before[upper] - before[lower]) % 12
            found += bool(motion[upper] != 0 and motion[upper] == motion[lower] and interval in PARALLEL_INTERVALS
                          and (after[upper] - after[lower]) % 12 == interval)
    return found
