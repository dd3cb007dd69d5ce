"""Peak memory of training on a large text file: genseq's streamed, memory-mapped cache against the plain load.

    python -m benchmarks.memory                 # a 1 GB file in /tmp (kept for reruns), 20 training steps
    python -m benchmarks.memory --quick         # a 64 MB file, 3 steps

genseq runs in fresh processes: `genseq.api.prepare_data` (the streaming cache build, timed),
then `genseq.api.train(FILE, steps=N)` (what `genseq train FILE --steps N` runs) from that
cache. The plain figure is the textbook load of benchmarks/common.py (whole text in
memory, ids as an int64 tensor), run on the first `--plain-mb` of the file, its growth past the
imports scaled linearly to the whole file (a full run would need about 10 bytes of RAM per
character).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import add_data_argument, data_file

LIMIT_BYTES = 2 * 1024**3


def make_text_file(path: Path, size_bytes: int, data: Path) -> Path:
    """`size_bytes` of the text `data` repeated (kept: a rerun with the same size reuses it)."""
    if path.exists() and path.stat().st_size == size_bytes:
        return path
    chunk = data_file(data).read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        written = 0
        while written < size_bytes:
            piece = chunk[: size_bytes - written]
            out.write(piece)
            written += len(piece)
    return path


def peak_rss_bytes() -> int:
    """The peak resident set of this process and of its waited-for children (Linux reports KiB)."""
    return 1024 * max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)


def current_rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        kib = next(line.split()[1] for line in status if line.startswith("VmRSS:"))
    return 1024 * int(kib)


def child(task: str, path: str, steps: int, limit_bytes: int) -> None:
    """Run in a fresh process: print {"seconds", "peak_rss"} of one task as JSON."""
    started = time.perf_counter()
    if task == "prepare":
        from genseq import api

        api.prepare_data(path, progress=False)
    elif task == "train":
        from genseq import api

        api.train(path, steps=steps, eval_every=steps, progress=False,
                  name=str(Path(os.environ["GENSEQ_CACHE"]) / "run"))
    elif task == "plain":
        import numpy as np
        import torch

        base_rss = current_rss_bytes()
        with open(path, "rb") as handle:
            text = handle.read(limit_bytes).decode("utf-8", errors="ignore")
        raw = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
        chars, ids = np.unique(raw, return_inverse=True)
        torch.from_numpy(ids.astype(np.int64))
        print(json.dumps({"seconds": time.perf_counter() - started, "peak_rss": peak_rss_bytes(),
                          "rss_after_imports": base_rss}))
        return
    print(json.dumps({"seconds": time.perf_counter() - started, "peak_rss": peak_rss_bytes()}))


def in_child(task: str, path: Path, cache: str, steps: int = 0, limit_bytes: int = 0) -> dict:
    command = [sys.executable, "-m", "benchmarks.memory", "--child", task, str(path), str(steps), str(limit_bytes)]
    result = subprocess.run(command, env={**os.environ, "GENSEQ_CACHE": cache}, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"{task} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a 64 MB file and 3 steps")
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--plain-mb", type=int, default=128, help="part of the file the plain load really reads")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    add_data_argument(parser)
    args = parser.parse_args()
    if args.child:
        task, path, steps, limit = args.child
        child(task, path, int(steps), int(limit))
        return
    size_mb, steps, plain_mb = (64, 3, 16) if args.quick else (args.size_mb, args.steps, args.plain_mb)
    size = size_mb * 1024**2
    path = make_text_file(Path(tempfile.gettempdir()) / f"genseq-memory-{size_mb}mb.txt", size, args.data)
    with tempfile.TemporaryDirectory() as cache:
        prepare = in_child("prepare", path, cache)
        print(json.dumps({"genseq cache build": prepare}), flush=True)
        train = in_child("train", path, cache, steps)
        print(json.dumps({"genseq train from cache": train}), flush=True)
    plain = in_child("plain", path, "", limit_bytes=plain_mb * 1024**2)
    grown = plain["peak_rss"] - plain["rss_after_imports"]
    plain_scaled = plain["rss_after_imports"] + grown * size / (plain_mb * 1024**2)
    print(json.dumps({f"plain load of {plain_mb} MB": plain}), flush=True)
    genseq_peak = max(prepare["peak_rss"], train["peak_rss"])
    print(f"\nfile: {size / 1024**2:,.0f} MB ({path})")
    print(f"genseq cache build: {prepare['seconds']:.1f} s ({size / 1024**2 / prepare['seconds']:.0f} MB/s), "
          f"peak RSS {prepare['peak_rss'] / 1024**2:,.0f} MB")
    print(f"genseq api.train steps= {steps} from the cache: {train['seconds']:.1f} s, "
          f"peak RSS {train['peak_rss'] / 1024**2:,.0f} MB")
    print(f"plain load, scaled from {plain_mb} MB: peak RSS {plain_scaled / 1024**2:,.0f} MB")
    print(f"ratio plain / genseq peak RSS: {plain_scaled / genseq_peak:.1f}x; "
          f"genseq under the 2 GB limit: {genseq_peak < LIMIT_BYTES}")


if __name__ == "__main__":
    main()
