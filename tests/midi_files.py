"""Real MIDI data for the MIDI tests: files written with mido/pretty_midi, chorales rendered by music21."""

from __future__ import annotations

import io
from collections import Counter

import mido
import pretty_midi

from genseq.tokenizers import MidiTokenizer


def midi_bytes(tracks: list[list[mido.Message | mido.MetaMessage]], ticks_per_beat: int = 480) -> bytes:
    """A type-1 standard MIDI file holding `tracks` (message times are delta ticks)."""
    midi = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    midi.tracks.extend(mido.MidiTrack(track) for track in tracks)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def band_with_tempo_changes(seed: int = 0) -> bytes:
    """Piano, bass, strings and drums on their own channels, with tempo changes at bars 2 and 3."""
    beat = 480
    tempo = [mido.MetaMessage("set_tempo", tempo=500_000, time=0),
             mido.MetaMessage("set_tempo", tempo=400_000, time=4 * beat),
             mido.MetaMessage("set_tempo", tempo=750_000, time=4 * beat)]
    tracks = [tempo]
    for channel, program, pitches in ((0, 0, (60, 64, 67)), (1, 33, (36, 43)), (2, 48, (72, 76)), (9, 0, (36, 42))):
        track = [mido.Message("program_change", channel=channel, program=program, time=0)]
        gap = 0
        for step in range(16):
            pitch = pitches[(step + seed) % len(pitches)]
            velocity = 20 + (step * 37 + seed * 11 + channel * 5) % 100
            length = beat // 2 + (step % 3) * 37 + seed
            track.append(mido.Message("note_on", channel=channel, note=pitch, velocity=velocity, time=gap))
            track.append(mido.Message("note_off", channel=channel, note=pitch, time=length))
            gap = beat - length
        tracks.append(track)
    return midi_bytes(tracks, beat)


def silent_file() -> bytes:
    """A well-formed MIDI file with a tempo and no notes."""
    return midi_bytes([[mido.MetaMessage("set_tempo", tempo=500_000, time=0)]])


def chorale_bytes(names: tuple[str, ...]) -> list[bytes]:
    """A few Bach chorales from music21's corpus rendered to MIDI, as the bach-chorales corpus does."""
    from music21 import corpus, midi

    return [midi.translate.streamToMidiFile(corpus.parse(f"bach/{name}")).writestr() for name in names]


def note_keys(midi: pretty_midi.PrettyMIDI, tokenizer: MidiTokenizer) -> Counter:
    """Each note as (program, drum, pitch, onset step, offset step, velocity bin) at the tokenizer's resolution.

    Decoded notes sit exactly on the grid, so two files agree on a key when every onset and offset is
    within the time resolution and every velocity in its bin. Notes last at least one step.
    """
    step = tokenizer.time_shift_ms / 1000
    keys: Counter = Counter()
    for instrument in midi.instruments:
        program = 0 if instrument.is_drum else instrument.program
        for note in instrument.notes:
            start = round(note.start / step)
            end = max(round(note.end / step), start + 1)
            keys[(program, instrument.is_drum, note.pitch, start, end,
                  note.velocity * tokenizer.velocity_bins // 128)] += 1
    return keys


def kept_share(original: pretty_midi.PrettyMIDI, tokenizer: MidiTokenizer) -> tuple[int, int]:
    """(notes that come back exactly after encode/decode, notes in `original`)."""
    before = note_keys(original, tokenizer)
    after = note_keys(tokenizer.decode(tokenizer.encode(original)), tokenizer)
    return sum((before & after).values()), sum(before.values())


def assert_writable(decoded: pretty_midi.PrettyMIDI) -> None:
    """A decoded file holds only valid notes, writes, and reads back with its notes."""
    from genseq.music.score import read_score

    for instrument in decoded.instruments:
        assert all(0 <= n.pitch <= 127 and n.end > n.start and 1 <= n.velocity <= 127 for n in instrument.notes)
    buffer = io.BytesIO()
    decoded.write(buffer)
    if any(i.notes for i in decoded.instruments):
        assert read_score(buffer.getvalue()).note_count() > 0


def read(data: bytes) -> pretty_midi.PrettyMIDI:
    return pretty_midi.PrettyMIDI(io.BytesIO(data))
