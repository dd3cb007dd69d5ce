"""What the page's piano rolls show of a kept MIDI file: its notes, and where its beats fall, in seconds.

A chorale's beats are quarter notes counted from the very start of the file (as `api.infill_voices` counts them),
so that a span of beats chosen on the roll, or typed, is shaded where it sounds.
"""

from __future__ import annotations

import math
from pathlib import Path

MAX_BEATS = 20_000
"""Beats a roll is given the times of (a file's end time comes from its own events, so it is capped)."""


def midi_notes(midi_path: Path) -> list[list[float]]:
    """[pitch, start, end, track, is_drum] of every note, for the page's piano roll."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(str(midi_path))
    return [[n.pitch, round(n.start, 3), round(n.end, 3), track, int(i.is_drum)]
            for track, i in enumerate(midi.instruments) for n in i.notes]


def beat_times(midi_path: Path) -> list[float]:
    """When each quarter-note beat of a MIDI file starts, in seconds from its start, then when the last one ends: beat
    n of a span (from 1) sounds from times[n - 1] to times[n]."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(str(midi_path))
    beats = min(math.ceil(midi.time_to_tick(midi.get_end_time()) / midi.resolution - 1e-6), MAX_BEATS)
    return [round(midi.tick_to_time(beat * midi.resolution), 3) for beat in range(max(beats, 1) + 1)]


def beats_in_seconds(midi_path: Path, start: int, end: int) -> list[float]:
    """[from, to] in seconds of the beats `start` to `end` of a MIDI file, counted from 0 at its start (a span's
    `Span.start` and `Span.end`), for the roll to shade; beats past its last note go on at its tempo there."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(str(midi_path))
    return [round(midi.tick_to_time(beat * midi.resolution), 3) for beat in (start, end)]
