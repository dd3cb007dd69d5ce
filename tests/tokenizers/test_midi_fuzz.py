"""Fuzzed MIDI files: every input either encodes or raises GenseqError, quickly and in bounded memory."""

from __future__ import annotations

import random
import resource
import struct
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genseq.errors import GenseqError
from genseq.music.score import MAX_FILE_BYTES, MAX_NOTES, MAX_SECONDS, MAX_TICKS
from genseq.tokenizers import MidiTokenizer
from tests.helpers import band_with_tempo_changes, silent_file

SECONDS_PER_INPUT = 2.0
MUTATIONS = 2000
TOKENIZER = MidiTokenizer()


def header(tracks: int, ticks_per_beat: int = 480, kind: int = 1) -> bytes:
    return b"MThd" + struct.pack(">Ihhh", 6, kind, tracks, ticks_per_beat)


def chunk(data: bytes, length: int | None = None) -> bytes:
    return b"MTrk" + struct.pack(">I", len(data) if length is None else length) + data


def variable_int(value: int) -> bytes:
    out = [value & 0x7F]
    while value := value >> 7:
        out.append(0x80 | (value & 0x7F))
    return bytes(reversed(out))


def note(delta: int, pitch: int = 60) -> bytes:
    return variable_int(delta) + bytes([0x90, pitch, 64]) + variable_int(10) + bytes([0x80, pitch, 0])


def mutate(base: bytes, rng: random.Random) -> bytes:
    """One hostile variant of a valid file (or of nothing at all)."""
    data = bytearray(base)
    kind = rng.randrange(9)
    if kind == 0:
        return bytes(data[: rng.randrange(len(data))])
    if kind == 1:
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 2:
        for _ in range(rng.randint(1, 16)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == 3:
        data[8:14] = struct.pack(">hhh", rng.randint(-32768, 32767), rng.randint(-32768, 32767),
                                 rng.choice([0, -1, 1, 32767, -32768, rng.randint(-32768, 32767)]))
    elif kind == 4:
        return header(1) + chunk(note(0) + note(rng.choice([MAX_TICKS, 2**27, 2**28 - 1, rng.randrange(2**28)])))
    elif kind == 5:
        return header(rng.randint(1, 32767)) + chunk(b"") * rng.randint(0, 5000) + chunk(note(0))
    elif kind == 6:
        return header(2) + chunk(note(0), length=rng.choice([0xFFFFFFFF, 2**31, rng.randrange(2**32)]))
    elif kind == 7:
        length = rng.choice([2**27, 10**6, rng.randrange(2**20)])
        meta = b"\x00\xff" + bytes([rng.randrange(128)]) + variable_int(length)
        return header(1) + chunk(meta + note(0))
    else:
        position = rng.randrange(len(data))
        data[position:position] = rng.randbytes(rng.randint(1, 64))
    return bytes(data)


def encode_within_bound(data: bytes) -> tuple[bool, float]:
    """(whether it encoded, seconds taken); anything but success or GenseqError fails the test."""
    started = time.perf_counter()
    try:
        TOKENIZER.encode(data)
        encoded = True
    except GenseqError:
        encoded = False
    seconds = time.perf_counter() - started
    assert seconds < SECONDS_PER_INPUT, f"{seconds:.2f} s on input {data[:64]!r}..."
    return encoded, seconds


@pytest.mark.slow
def test_seeded_mutations_encode_or_raise_genseq_errors_quickly():
    rng = random.Random(20240607)
    bases = [band_with_tempo_changes(seed) for seed in range(3)] + [silent_file()]
    memory_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results = [encode_within_bound(mutate(rng.choice(bases), rng)) for _ in range(MUTATIONS)]
    growth_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - memory_before) / 1024
    encoded = sum(ok for ok, _ in results)
    print(f"\nfuzz: {len(results)} inputs, {encoded} encoded, {len(results) - encoded} refused, "
          f"longest {max(s for _, s in results):.3f} s, peak memory growth {growth_mib:.0f} MiB; caps: "
          f"{MAX_FILE_BYTES} bytes, {MAX_TICKS} ticks, {MAX_NOTES} notes, {MAX_SECONDS} s")
    assert growth_mib < 1024
    assert 0 < encoded < len(results)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_encode_or_raise_genseq_errors(data):
    encode_within_bound(data)


@settings(max_examples=200, deadline=None)
@given(st.integers(-32768, 32767), st.integers(-32768, 32767), st.binary(max_size=2048))
def test_arbitrary_tracks_behind_a_valid_header_encode_or_raise_genseq_errors(tracks, ticks_per_beat, body):
    encode_within_bound(header(tracks, ticks_per_beat) + chunk(body) + body)
