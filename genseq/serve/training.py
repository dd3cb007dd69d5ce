"""The studio's Train tab without HTTP: the files a user uploads, one training at a time, and what the page shows of it.

A training is a child process, `python -m genseq train DATA [--from BASE] --minutes M --sample-every eval`: a crash
cannot take the server down, and Stop is the SIGINT a terminal's Ctrl-C sends, which the trainer turns into "evaluate,
save and stop" (best.pt, the best checkpoint so far, is kept). The page's loss curve and samples are read from the
run folder as the child writes it (metrics.jsonl, samples/index.jsonl).

One CPU-heavy job at a time: while a training runs, a generation is refused (409) with the reason and the time left,
and a training is refused while a generation runs or waits. Two such jobs on a small machine slow each other down
many times over, and a generation that waited in line for a training would wait minutes with no way to see why.

Uploads live under `runs/studio/training/` (the run folders beside the other runs, so that the model list and
`genseq runs` show them); nothing a request names is used as a path: file names are reduced to plain names.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genseq.api.progress_samples import EACH_EVALUATION, read_index
from genseq.errors import GenseqError, InputError
from genseq.files import write_atomic
from genseq.limits import read_json_number
from genseq.lm.training import read_metrics
from genseq.serve.rolls import midi_notes
from genseq.serve.studio import MAX_UPLOAD_BYTES, PLAIN_NAME, Studio

TRAIN_SUFFIXES = {".abc": "abc", ".txt": "char", ".mid": "midi", ".midi": "midi"}
"""What a training file may be, and the tokenizer kind it trains."""
BASE_KINDS = {"abc": ("abc",), "char": ("char",), "midi": ("midi", "beat", "voices")}
"""The tokenizer kinds of the base models each kind of file fine-tunes."""
FILE_KINDS = {"abc": "ABC tunes (.abc)", "char": "text (.txt)", "midi": "MIDI files (.mid)"}
"""Each kind of file as a message names it."""
MAX_FILES = 2_000
"""Files in one upload (a folder of tunes or MIDI files holds hundreds)."""
MAX_TOTAL_BYTES = 64 * 2**20
"""All files of one upload, as unpacked: a zip bomb stops here, however well it compresses."""
MAX_ZIP_BYTES = 32 * 2**20
"""One request's body: a zip as sent (any other file is bounded by MAX_UPLOAD_BYTES, the primer's cap)."""
MAX_ZIP_ENTRIES = 10_000
"""Entries a zip may list (folders and skipped files included) before any is read."""
MAX_MINUTES = 60.0
UPLOADS_KEPT = 8
"""Upload sets kept open at once; an older one that never trained is deleted."""
SAMPLE_CHARS = 4_000
"""Of the latest samples' text, what the page is sent."""


class Refusal(GenseqError):
    """A request the studio refuses with this HTTP status (413: too big, 409: busy, 404: nothing to stop)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Upload:
    """Files sent for one training, kept in `folder/data`."""

    id: str
    folder: Path
    files: int = 0
    size: int = 0
    kinds: Counter = field(default_factory=Counter)
    skipped: list[str] = field(default_factory=list)
    """Why each unusable file was skipped ("notes.pdf: not .abc, ...")."""
    trained: bool = False

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def summary(self) -> dict[str, Any]:
        return {"upload": self.id, "files": self.files, "bytes": self.size, "kinds": dict(self.kinds),
                "skipped": len(self.skipped), "reasons": self.skipped[-5:]}


@dataclass
class Training:
    """One child process training one run folder."""

    id: str
    run_dir: Path
    base: str | None
    minutes: float
    files: int
    process: subprocess.Popen
    log: Path
    started: float = field(default_factory=time.time)
    stop_requested: bool = False
    ended: float | None = None
    outcome: str | None = None
    """None while it runs; then "finished", "stopped" or "failed"."""
    error: str | None = None

    @property
    def running(self) -> bool:
        return self.ended is None

    def seconds_left(self) -> float:
        """The budget not yet spent (the child also spends a few seconds starting and a last evaluation)."""
        return max(0.0, self.started + 60 * self.minutes - time.time())

    def record(self) -> dict[str, Any]:
        """What the history keeps of it."""
        metrics = _losses(self.run_dir)
        val = [m["val_loss"] for m in metrics if m["val_loss"] is not None]
        return {"id": self.id, "run": self.run_dir.name, "model": f"run:{self.run_dir.name}", "base": self.base,
                "minutes": self.minutes, "files": self.files,
                "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started)),
                "seconds": round((self.ended or time.time()) - self.started, 1),
                "state": self.outcome or ("stopping" if self.stop_requested else "running"), "error": self.error,
                "steps": metrics[-1]["step"] if metrics else 0, "best_val_loss": min(val) if val else None,
                "kept": (self.run_dir / "best.pt").is_file()}

    def snapshot(self) -> dict[str, Any]:
        """The record, the loss at every evaluation so far, and the latest samples with their step and loss."""
        return {**self.record(), "seconds_left": round(self.seconds_left()), "metrics": _losses(self.run_dir),
                "samples": _latest_samples(self.run_dir)}


class Trainings:
    """The Train tab: uploads, the one training of this process, and the trainings kept in `history.json`."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio
        self.folder = studio.runs / "studio" / "training"
        self.uploads: OrderedDict[str, Upload] = OrderedDict()
        self.current: Training | None = None
        self._lock = threading.Lock()
        self.history = self._read_history()

    # uploads --------------------------------------------------------------------------------------------------

    def add_file(self, upload_id: str | None, name: str, data: bytes) -> dict[str, Any]:
        """A file the page sent (one of a few, of a folder, or a zip of them) into the upload `upload_id` (a new
        one when None). An unusable file is skipped and counted; an upload past its limits is refused (413)."""
        upload = self._upload(upload_id)
        if upload.trained:  # its run reads these files (to resume, say): they stay as they were
            raise Refusal(409, "those files have trained a model, whose run reads them; start a new set of files "
                               "to add more")
        shown = _plain_name(name)
        if len(data) > MAX_ZIP_BYTES:
            raise Refusal(413, f"{shown} is over the {MAX_ZIP_BYTES // 2**20} MiB cap for an upload")
        files = _unzip(shown, data) if shown.lower().endswith(".zip") else [(shown, data)]
        kept = [(n, d) for n, d in files if self._usable(upload, n, d) and d is not None]
        if upload.files + len(kept) > MAX_FILES:
            raise Refusal(413, f"{shown} would make {upload.files + len(kept):,} files; a training takes at most "
                               f"{MAX_FILES:,} (upload fewer, or start again)")
        size = sum(len(d) for _, d in kept)
        if upload.size + size > MAX_TOTAL_BYTES:
            raise Refusal(413, f"{shown} would make {(upload.size + size) / 2**20:.0f} MiB of files; a training "
                               f"takes at most {MAX_TOTAL_BYTES // 2**20} MiB (upload fewer, or start again)")
        for kept_name, kept_data in kept:
            upload.files += 1
            write_atomic(upload.data / f"{upload.files:04d}-{kept_name}", kept_data)
            upload.kinds[TRAIN_SUFFIXES[Path(kept_name).suffix.lower()]] += 1
        upload.size += size
        return upload.summary()

    def _upload(self, upload_id: str | None) -> Upload:
        """The upload of that id (404 when forgotten), or a new one in its own folder; the oldest that never
        trained is deleted past UPLOADS_KEPT."""
        if upload_id is None or upload_id == "":
            upload = Upload(secrets.token_hex(6), self.folder / "uploads" / time.strftime("%Y%m%d-%H%M%S"))
            upload.folder = upload.folder.with_name(f"{upload.folder.name}-{upload.id}")
            self.uploads[upload.id] = upload
            while len(self.uploads) > UPLOADS_KEPT:
                _, old = self.uploads.popitem(last=False)
                if not old.trained:
                    shutil.rmtree(old.folder, ignore_errors=True)
            return upload
        if upload_id not in self.uploads:
            raise Refusal(404, "those uploaded files are gone (the studio restarted or forgot them); upload them "
                               "again")
        return self.uploads[upload_id]

    @staticmethod
    def _usable(upload: Upload, name: str, data: bytes | None) -> bool:
        """Whether a file can train (None: a zip entry that could not be unpacked); if not, why is kept in
        `upload.skipped`."""
        suffix = Path(name).suffix.lower()
        reason = None
        if data is None:
            reason = "cannot be unpacked (damaged or encrypted)"
        elif suffix not in TRAIN_SUFFIXES:
            reason = f"not {', '.join(TRAIN_SUFFIXES)}"
        elif not data:
            reason = "empty"
        elif len(data) > MAX_UPLOAD_BYTES:
            reason = f"over the {MAX_UPLOAD_BYTES // 2**20} MiB cap for one file"
        elif TRAIN_SUFFIXES[suffix] == "midi" and not data.startswith(b"MThd"):
            reason = "not a MIDI file"
        elif TRAIN_SUFFIXES[suffix] != "midi":
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                reason = "not UTF-8 text"
        if reason is not None:
            upload.skipped.append(f"{name}: {reason}")
        return reason is None

    # the training ---------------------------------------------------------------------------------------------

    def start(self, request: dict[str, Any]) -> dict[str, Any]:
        """Start training on an upload: {"upload": id, "base": a model id or "" for none, "minutes": M}."""
        upload_id = request.get("upload")
        if not upload_id:
            raise InputError("upload the files to train on first")
        upload = self._upload(str(upload_id))
        minutes = read_json_number("minutes", request.get("minutes"), float, None)
        if minutes is None or not 0 < minutes <= MAX_MINUTES:
            shown = "none" if minutes is None else f"{minutes:g}"
            raise InputError(f"minutes must lie in (0, {MAX_MINUTES:g}], got {shown}")
        kind = self._kind(upload)
        base = request.get("base") or None
        command = [sys.executable, "-m", "genseq", "train", str(upload.data.resolve()), "--minutes", f"{minutes:g}",
                   "--sample-every", EACH_EVALUATION, "--quiet"]
        if base is not None:
            command += ["--from", str(self._base_checkpoint(base, kind))]
        with self._lock:
            refusal = self.busy() or self.studio_busy()
            if refusal is not None:
                raise Refusal(409, refusal)
            run_dir = self._run_dir(base)
            log = self.folder / "logs" / f"{run_dir.name}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("wb") as output:  # the child's stderr: its one-line error, if it fails
                process = subprocess.Popen([*command, "--name", str(run_dir)], stdin=subprocess.DEVNULL,
                                           stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
            upload.trained = True
            training = self.current = Training(secrets.token_hex(6), run_dir, base, minutes, upload.files, process,
                                               log)
            self._keep(training)
        threading.Thread(target=self._watch, args=(training,), daemon=True, name="genseq-training").start()
        return training.snapshot()

    def _kind(self, upload: Upload) -> str:
        """The one kind of file an upload holds (ABC, text or MIDI): an InputError if none, or a mix."""
        kinds = sorted(upload.kinds)
        if not kinds:
            raise InputError(f"none of the {len(upload.skipped)} uploaded files can train a model; upload "
                              f"{', '.join(TRAIN_SUFFIXES)} files")
        if len(kinds) > 1:
            raise InputError(f"the upload mixes {' and '.join(FILE_KINDS[k] for k in kinds)}; a model learns one "
                             "kind: start again with one")
        return kinds[0]

    def _base_checkpoint(self, model_id: Any, kind: str) -> Path | str:
        """The checkpoint of a base model from the list, checked to read this kind of file."""
        rows = {row["id"]: row for row in self.studio.models()[0]}
        if not isinstance(model_id, str) or model_id not in rows:
            raise InputError(f"unknown base model {model_id!r}; pick one from the list, or none")
        if rows[model_id]["kind"] not in BASE_KINDS[kind]:
            raise InputError(f"{rows[model_id]['name']} is a {rows[model_id]['kind']} model and the upload holds "
                             f"{FILE_KINDS[kind]}; pick a {' or '.join(BASE_KINDS[kind])} model, or none")
        return self.studio.checkpoint(model_id)

    def _run_dir(self, base: str | None) -> Path:
        """A new run folder beside the others: studio-DATE-TIME-BASE."""
        stem = f"studio-{time.strftime('%Y%m%d-%H%M%S')}-{re.sub(r'[^A-Za-z0-9-]', '', (base or 'new')[:40])}"
        run_dir, number = self.studio.runs / stem, 1
        while run_dir.exists():
            number += 1
            run_dir = self.studio.runs / f"{stem}-{number}"
        return run_dir.resolve()

    def _watch(self, training: Training) -> None:
        """Wait for the child, then say how it ended (in the history too)."""
        status = training.process.wait()
        if status == 0:
            training.outcome = "stopped" if training.stop_requested else "finished"
        elif training.stop_requested and not (training.run_dir / "best.pt").exists():
            training.outcome, training.error = "stopped", "stopped before the first step; nothing was kept"
        else:
            training.outcome, training.error = "failed", _last_error(training.log, status)
        training.ended = time.time()
        self._keep(training)

    def stop(self) -> dict[str, Any]:
        """Stop the training at its next step: it evaluates, saves, and keeps its best checkpoint."""
        training = self.current
        if training is None or not training.running:
            raise Refusal(404, "no training is running")
        if not training.stop_requested:
            training.stop_requested = True
            training.process.send_signal(signal.SIGINT)
        return {"stopping": training.id}

    def close(self) -> None:
        """The server is going down: the training stops as Stop stops it, keeping its best checkpoint."""
        if self.current is not None and self.current.running and not self.current.stop_requested:
            self.stop()

    # what the page is told --------------------------------------------------------------------------------------

    def busy(self) -> str | None:
        """Why nothing else may start now (a training runs), with the time it has left; None when idle."""
        training = self.current
        if training is None or not training.running:
            return None
        left = training.seconds_left()
        when = f"about {left / 60:.0f} min" if left >= 90 else f"about {left:.0f} s"
        return (f"a training is running ({training.run_dir.name}, {when} left); one heavy job runs at a time, as "
                "two slow each other down many times over: stop it in the Train tab or try again when it ends")

    def studio_busy(self) -> str | None:
        """Why a training may not start now: a generation runs or waits."""
        if self.studio.running is None and not self.studio.waiting:
            return None
        return "a generation is running; one heavy job runs at a time: start the training when it ends"

    def check_generation(self) -> None:
        """A generation may start only while no training runs (Refusal 409 saying why and for how long)."""
        refusal = self.busy()
        if refusal is not None:
            raise Refusal(409, refusal)

    def status(self) -> dict[str, Any]:
        """The training running now or last (with its curve and samples), and the history, newest first."""
        history = dict(self.history)
        if self.current is not None:
            history[self.current.id] = self.current.record()  # as it is now, not as it was at its start
        return {"training": None if self.current is None else self.current.snapshot(),
                "history": sorted(history.values(), key=lambda r: r["started"], reverse=True),
                "limits": {"minutes": MAX_MINUTES, "files": MAX_FILES, "file_bytes": MAX_UPLOAD_BYTES,
                           "zip_bytes": MAX_ZIP_BYTES, "total_bytes": MAX_TOTAL_BYTES}}

    def _keep(self, training: Training) -> None:
        self.history[training.id] = training.record()
        write_atomic(self.folder / "history.json", json.dumps(list(self.history.values()), indent=1))

    def _read_history(self) -> dict[str, dict[str, Any]]:
        """Trainings of earlier sessions; one the server was stopped during is marked so. Unreadable: empty."""
        path = self.folder / "history.json"
        try:
            records = json.loads(path.read_bytes().decode("utf-8")) if path.is_file() and not path.is_symlink() \
                else []
        except (OSError, ValueError):
            records = []
        kept = {}
        for record in records if isinstance(records, list) else []:
            if isinstance(record, dict) and isinstance(record.get("id"), str) and isinstance(record.get("run"), str) \
                    and isinstance(record.get("started"), str):
                if record.get("state") in ("running", "stopping"):
                    record["state"] = "interrupted"
                kept[record["id"]] = record
        return kept


def _plain_name(name: str) -> str:
    """A sent file name as a plain name: its last part, odd characters replaced, at most 100 characters."""
    return re.sub(r"[^A-Za-z0-9._ -]", "_", Path(name.replace("\\", "/")).name).lstrip(".")[-100:] or "file"


def _unzip(name: str, data: bytes) -> list[tuple[str, bytes | None]]:
    """The files of a zip as (plain name, bytes); each read at most one byte past the cap for one file, and the
    total bounded, whatever the zip claims. Folders and links are left out; an entry that cannot be unpacked
    comes back as None (skipped and counted)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError):
        raise InputError(f"{name} is not a zip file this can read; zip the files again, or upload them as they "
                          "are") from None
    entries = archive.infolist()
    if len(entries) > MAX_ZIP_ENTRIES:
        raise Refusal(413, f"{name} lists {len(entries):,} entries; a zip may list at most {MAX_ZIP_ENTRIES:,}")
    files: list[tuple[str, bytes | None]] = []
    total = 0
    for entry in entries:
        if entry.is_dir() or (entry.external_attr >> 16) & 0o170000 == 0o120000 or "__MACOSX/" in entry.filename:
            continue
        content: bytes | None
        try:
            with archive.open(entry) as member:
                content = member.read(MAX_UPLOAD_BYTES + 1)
        except (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, EOFError, OSError, ValueError):
            content = None  # damaged, encrypted or of a compression Python lacks
        total += len(content or b"")
        if total > MAX_TOTAL_BYTES:
            raise Refusal(413, f"{name} unpacks to over {MAX_TOTAL_BYTES // 2**20} MiB; a training takes at most "
                               "that much")
        files.append((_plain_name(entry.filename), content))
    return files


def _losses(run_dir: Path) -> list[dict[str, Any]]:
    """Each evaluation so far: step, training and validation loss, seconds."""
    path = run_dir / "metrics.jsonl"
    if path.is_symlink() or not path.is_file():
        return []
    return [{key: record.get(key) for key in ("step", "train_loss", "val_loss", "elapsed")}
            for record in read_metrics(run_dir) if isinstance(record.get("step"), int)]


def _latest_samples(run_dir: Path) -> dict[str, Any] | None:
    """The last samples written: their step and validation loss, and the text (ABC, text) or the notes of each
    MIDI sample (for the piano roll)."""
    folder = run_dir / "samples"
    try:
        index = read_index(folder) if not folder.is_symlink() else []
    except (OSError, ValueError):  # a line being written: the next look reads it
        return None
    if not index or not isinstance(index[-1], dict):
        return None
    entry = index[-1]
    texts, notes = [], []
    for name in entry.get("files") or []:
        path = folder / name if isinstance(name, str) and PLAIN_NAME.fullmatch(name) else None
        if path is None or path.is_symlink() or not path.is_file():
            continue
        if path.suffix == ".mid":
            notes.append(midi_notes(path))
        else:
            texts.append(path.read_text(encoding="utf-8", errors="replace")[:SAMPLE_CHARS])
    return {"step": entry.get("step"), "val_loss": entry.get("val_loss"), "texts": texts, "notes": notes,
            "sampled": len(index)}


def _last_error(log: Path, status: int) -> str:
    """The child's one-line error, else its exit status and where its output is."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        lines = []
    errors = [line[7:] for line in lines if line.startswith("error: ")]
    return errors[-1][:500] if errors else f"training failed (exit status {status}); its output is in {log}"
