"""Files written whole or not at all: a crash leaves the previous file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from genseq.errors import GenseqError

WRITE_ERRORS = (OSError, RuntimeError, EOFError, wave.Error)
"""What a failed write raises: OSError from Python, RuntimeError from torch's archive writer (a full disk inside
`torch.save`), wave.Error from the audio writer."""


def _reason(err: BaseException, folder: Path) -> str:
    """One short line saying why a write failed (torch's messages span lines and name its own source files)."""
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    cause = err.__cause__ or err.__context__
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    with contextlib.suppress(OSError):
        if os.statvfs(folder).f_bavail == 0:
            return "No space left on device"
    return " ".join(str(err).split())[-160:] or type(err).__name__


@contextlib.contextmanager
def atomic_file(path: str | Path, what: str = "") -> Iterator[BinaryIO]:
    """A binary handle on a temporary file beside `path`, fsynced and renamed over `path` on success.

    A failed write (a full disk) is a one-line GenseqError naming `what` and `path`; any error
    leaves no temporary file behind.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except WRITE_ERRORS as err:
        raise GenseqError(
            f"could not write {what}{path}: {_reason(err, path.parent)}; free some disk space or pick another folder"
        ) from None
    finally:
        temporary.unlink(missing_ok=True)


def write_atomic(path: str | Path, data: bytes | str, what: str = "") -> None:
    """Write `data` (text as UTF-8) to `path` through `atomic_file`."""
    with atomic_file(path, what) as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)


DEFAULT_RUNS = Path("checkpoints")
"""Where training runs go and where `genseq runs` and the studio look, relative to the working folder."""


def cache_dir() -> Path:
    """Where built corpora, token caches and step probes live: `$GENSEQ_CACHE` or `~/.cache/genseq`."""
    return Path(os.environ.get("GENSEQ_CACHE") or Path.home() / ".cache" / "genseq")
