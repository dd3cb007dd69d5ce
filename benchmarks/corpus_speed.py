"""Corpus tokenizing speed: a first (cold) build against a second run from the cache, one run.

    python -m benchmarks.corpus_speed            # folk-abc, then 1,000 generated MIDI files
    python -m benchmarks.corpus_speed --quick    # 100 MIDI files, no folk-abc

folk-abc: `genseq.api.prepare_data(corpus="folk-abc")` with an empty GENSEQ_CACHE, then again.
MIDI: a folder of generated MIDI files through `prepare_data` (a spawn process pool over all
cores), then from the cache; and the same token cache built with one worker, to show the pool's
speed-up and the cores it keeps busy (CPU seconds of this process and its children / wall seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import tempfile
import time
from pathlib import Path

import mido

from genseq import api
from genseq.corpora.sources import find_documents
from genseq.lm.data import build_token_cache


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(action) -> dict:
    wall, cpu = time.perf_counter(), cpu_seconds()
    action()
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    return {"seconds": wall, "cores_busy": cpu / wall}


def write_midi_files(folder: Path, count: int, notes: int = 400) -> None:
    """`count` two-track MIDI files of `notes` notes each (a melody over a bass line), seeded."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        rng = random.Random(index)
        midi = mido.MidiFile(type=1, ticks_per_beat=480)
        for channel, low in ((0, 60), (1, 36)):
            track = mido.MidiTrack([mido.Message("program_change", channel=channel, program=channel * 32, time=0)])
            for _ in range(notes // 2):
                pitch, length = low + rng.randrange(24), rng.choice((120, 240, 480))
                track.append(mido.Message("note_on", channel=channel, note=pitch, velocity=rng.randrange(30, 120),
                                          time=rng.choice((0, 0, 120))))
                track.append(mido.Message("note_off", channel=channel, note=pitch, time=length))
            midi.tracks.append(track)
        midi.save(str(folder / f"tune-{index:04d}.mid"))


def cold_and_cached(prepare) -> dict:
    """Time `prepare` with an empty GENSEQ_CACHE, then again from the cache it built."""
    with tempfile.TemporaryDirectory() as cache:
        os.environ["GENSEQ_CACHE"] = cache
        cold = timed(prepare)
        cached = timed(prepare)
    return {"cold": cold, "cached": cached, "speedup": cold["seconds"] / cached["seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100 MIDI files and no folk-abc")
    parser.add_argument("--midi-files", type=int, default=1000)
    args = parser.parse_args()
    rows = {}
    if not args.quick:
        rows["folk-abc"] = cold_and_cached(lambda: api.prepare_data(corpus="folk-abc", progress=False))
        print(json.dumps({"folk-abc": rows["folk-abc"]}), flush=True)
    count = 100 if args.quick else args.midi_files
    with tempfile.TemporaryDirectory() as folder:
        write_midi_files(Path(folder) / "midi", count)
        source = str(Path(folder) / "midi")
        name = f"{count} MIDI files"
        rows[name] = cold_and_cached(lambda: api.prepare_data(source, tokenizer="midi", progress=False))
        print(json.dumps({name: rows[name]}), flush=True)
        tokenizer = api.prepare_data(source, tokenizer="midi", progress=False).tokenizer
        documents = find_documents(source, "midi")
        one = timed(lambda: build_token_cache(documents, tokenizer, Path(folder) / "one-worker.bin", workers=1))
        rows[name]["one worker, all files"] = one
        print(json.dumps({f"{name}, one worker": one}), flush=True)
    print(f"\n{'':18} {'cold s':>8} {'cores':>6} {'cached s':>9} {'speed-up':>9}")
    for name, row in rows.items():
        print(f"{name:18} {row['cold']['seconds']:8.2f} {row['cold']['cores_busy']:6.2f} "
              f"{row['cached']['seconds']:9.3f} {row['speedup']:8.0f}x")
    midi = rows[f"{count} MIDI files"]
    one = midi["one worker, all files"]
    print(f"MIDI, one worker (train and validation splits together): {one['seconds']:.2f} s, "
          f"{one['cores_busy']:.2f} cores busy; the pool is {one['seconds'] / midi['cold']['seconds']:.2f}x faster "
          f"on {len(os.sched_getaffinity(0))} cores")


if __name__ == "__main__":
    main()
