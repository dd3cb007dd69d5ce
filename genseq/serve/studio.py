"""What the studio serves, without HTTP: the models on offer, one generation at a time, results kept on disk.

Every generation is `genseq.load(...).sample(...)` with an `on_step` callback that streams tokens and
ends the sampling when asked (`StopSampling`); its files are written by `export.export_samples`. A refill draws a
span of a kept result's sample again (`TrainedModel.infill`) through the same line of jobs, and its result records
which result it is a version of.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genseq import api
from genseq.api import export
from genseq.errors import GenseqError, InputError
from genseq.files import write_atomic
from genseq.limits import read_json_number
from genseq.lm.checkpoint import shipped_models
from genseq.lm.config import SampleConfig, SampleOptions
from genseq.lm.sampling import StopSampling
from genseq.music.score import MAX_FILE_BYTES, MIDI_SUFFIXES
from genseq.music.spans import bar_numbers, parse_seconds
from genseq.rules import CANDIDATES
from genseq.rules.harmonize import melody_template, pitched_tracks, read_melody
from genseq.serve.rolls import beat_times, beats_in_seconds, midi_notes
from genseq.tokenizers.midi import MidiEncoding

MAX_LENGTH = 20_000
"""Tokens per sample a request may ask for (the sampler allocates length x samples up front)."""
MAX_SAMPLES = 16
MAX_PRIMER_CHARS = 100_000
MAX_UPLOAD_BYTES = MAX_FILE_BYTES
"""An uploaded primer file: the cap the MIDI reader has for one file."""
PRIMER_SUFFIXES = (*MIDI_SUFFIXES, ".abc", ".txt")
REFILL_STOPPED = "stopped: a span is drawn again whole or not at all, so nothing was kept; the piece is as it was"
FLUSH_SECONDS = 0.05
"""Tokens drawn are sent to the page at most this often (a step takes ~0.1 ms)."""
SCORED_KINDS = ("abc", "beat", "voices")
"""Tokenizers whose samples are engraved (ABC tunes and beat-grid chorales); performance MIDI is not notation."""
DOWNLOADS = {"abc": "text/vnd.abc; charset=utf-8", "txt": "text/plain; charset=utf-8", "mid": "audio/midi",
             "musicxml": "application/vnd.recordare.musicxml+xml", "wav": "audio/wav", "svg": "image/svg+xml"}
"""What a sample's files are offered as, by suffix, with their media types."""
_EXPORTED = ("text_file", "midi", "wav", "score", "musicxml")
"""Keys of the files `export.export_samples` lists per sample."""
_RESULT_ID = re.compile(r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$")
INFILL_UNITS = {"abc": "bars", "char": "chars", "voices": "beats", "midi": "seconds", "beat": "seconds"}
"""What a span to draw again counts, by the kind of model (the page reads it from /api/models): bars of a tune chosen
on its score, characters of a text, beats of a chorale or seconds of other MIDI chosen on its piano roll."""
TEXT_UNITS = ("bars", "chars")
"""Spans found in a sample's text: a refill records where they lie in it (`start`, `end`, `after`)."""
ROLL_UNITS = ("beats", "seconds")
"""Spans of a MIDI sample: a refill records where they sound (`seconds`), for its piano rolls to shade."""
MAX_CANDIDATES = 32
"""Fills drawn for each version kept: the batch is candidates x versions, so both are capped."""
MAX_SPAN_CHARS = 40
"""A span as the page sends it: `5-8`, `120-180`, `12.5-20`; and a chorale's voices to draw again: `alto,tenor`."""
PLAIN_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")
"""A file a record names: a plain name inside its folder (no separator, no leading dot, so never `..`)."""


@dataclass
class Job:
    """One generation request, validated, waiting or running."""

    id: str
    model_id: str
    prepared: api.PreparedSample
    """The request, checked against its model (`SampleRequest.prepare`): what `run` draws."""
    settings: dict[str, Any]
    """What it is drawn with, as the result records it (the seed drawn when the page asked for a new one)."""
    infill: dict[str, Any] | None = None
    """For a refill: which result and sample it draws a span of again, and where the span lies (`Studio.refill`)."""
    stop_reason: str | None = None
    """Set to end the sampling at the next token: "stop" (kept), "disconnected" or "shutdown" (dropped)."""
    finished: threading.Event = field(default_factory=threading.Event)

    @property
    def primer(self) -> Any:
        """What the samples continue (the text, a MIDI primer's PrettyMIDI, or None)."""
        return self.prepared.primer

    @property
    def shown_primer(self) -> str:
        """What the page's live text starts with: the text primer, or a refilled piece up to its span."""
        if not isinstance(self.primer, str):
            return ""
        return self.primer if self.infill is None else self.primer[:self.infill["start"]]


class Studio:
    """The models on offer, the line of jobs, and the results kept under `runs/studio/`."""

    def __init__(self, runs: Path = api.DEFAULT_RUNS):
        self.runs = Path(runs)
        self.folder = self.runs / "studio" / "results"
        self.waiting: list[Job] = []
        self.running: Job | None = None
        self.closing = False
        self._loaded: OrderedDict[str, api.TrainedModel] = OrderedDict()
        self._shipped: dict[str, dict[str, Any]] = {}
        self._uploads: OrderedDict[str, Any] = OrderedDict()
        self._load_lock = threading.Lock()
        self.skipped = 0
        """Result records under `folder` that the studio did not write or cannot read (skipped, never served)."""
        self.results = self._read_results()

    # models ---------------------------------------------------------------------------------------------------

    def models(self) -> tuple[list[dict[str, Any]], int]:
        """Shipped models, then every run under `runs` (newest first), with corpus, size, best loss and the
        temperature each samples at unless told otherwise (the page's slider starts there); and how many folders
        were skipped as not genseq's (`api.find_runs`)."""
        rows = [self._shipped_row(name) for name in sorted(shipped_models())]
        runs = api.find_runs(self.runs)
        for run in runs.rows:
            rows.append({"id": f"run:{Path(run['run']).name}", "name": Path(run["run"]).name, "source": "run",
                         "kind": run["tokenizer"], "corpus": run["data"], "size": run["size"],
                         "best_val_loss": run["best_val_loss"],
                         "temperature": SampleConfig().effective_temperature})  # `genseq train` names no defaults
        return rows, len(runs.skipped)

    def _shipped_row(self, name: str) -> dict[str, Any]:
        if name not in self._shipped:
            info = self.model(name).info()
            model, data = info["model"], info["data"] or {}
            self._shipped[name] = {
                "id": name, "name": name, "source": "shipped", "kind": info["tokenizer"],
                "corpus": data.get("corpus") or data.get("source"),
                "size": f"{model['num_layers']}x{model['hidden_size']}",
                "best_val_loss": (info["progress"] or {}).get("best_val_loss"),
                "temperature": self.model(name).sample_config().effective_temperature}
        return self._shipped[name]

    def checkpoint(self, model_id: str) -> Path | str:
        """The checkpoint of a model id from the list; an id is looked up, never used as a path."""
        if model_id in shipped_models():
            return model_id
        if model_id.startswith("run:"):
            for run in api.find_runs(self.runs).rows:
                if f"run:{Path(run['run']).name}" == model_id:
                    if run["checkpoint"] is None:
                        raise InputError(f"run {model_id[4:]} has no checkpoint yet; pick another model")
                    return Path(run["checkpoint"])
        raise InputError(f"unknown model {model_id!r}; pick one from the list")

    def model(self, model_id: str) -> api.TrainedModel:
        """The loaded model (the last few are kept in memory)."""
        with self._load_lock:
            if model_id not in self._loaded:
                self._loaded[model_id] = api.load(self.checkpoint(model_id))
                while len(self._loaded) > 3:
                    self._loaded.popitem(last=False)
            self._loaded.move_to_end(model_id)
            return self._loaded[model_id]

    # primers --------------------------------------------------------------------------------------------------

    def read_upload(self, model_id: str, filename: str, data: bytes) -> dict[str, Any]:
        """A primer file the page sent: text comes back to be shown and edited; MIDI is kept under an id."""
        name = re.sub(r"[^A-Za-z0-9._ -]", "_", Path(filename).name)[-100:] or "primer"
        if Path(name).suffix.lower() not in PRIMER_SUFFIXES:
            raise InputError(f"{name}: a primer file is {', '.join(PRIMER_SUFFIXES)}")
        if len(data) > MAX_UPLOAD_BYTES:
            raise InputError(f"{name} is over the {MAX_UPLOAD_BYTES // 2**20} MiB cap for a primer file")
        model = self.model(model_id)
        with tempfile.TemporaryDirectory(prefix="genseq-primer-") as folder:
            path = Path(folder) / name
            write_atomic(path, data, "the primer file ")
            try:
                kind, primer, length = _read_file(model, path)
            except GenseqError as err:  # the CLI's message, naming the file as the user knows it
                raise InputError(str(err).replace(str(path), name)) from None
        if kind == "melody":
            return self._keep_upload(model_id, name, primer, length)
        if isinstance(primer, str):
            if len(primer) > MAX_PRIMER_CHARS:
                raise InputError(f"{name} holds {len(primer):,} characters; a primer may hold {MAX_PRIMER_CHARS:,}")
            model.encode_primer(primer)
            return {"kind": "text", "name": name, "text": primer}
        model.encode_primer(primer)
        return self._keep_upload(model_id, name, primer, None)

    def _keep_upload(self, model_id: str, name: str, primer: Any, melody_length: int | None) -> dict[str, Any]:
        """A MIDI primer, or a melody with the tokens its settings take, kept under an id for the generation that
        names it (the last 8 kept)."""
        upload = secrets.token_hex(8)
        self._uploads[upload] = (model_id, name, primer, melody_length)
        while len(self._uploads) > 8:
            self._uploads.popitem(last=False)
        return {"kind": "midi" if melody_length is None else "melody", "name": name, "upload": upload}

    # jobs -----------------------------------------------------------------------------------------------------

    def prepare(self, request: dict[str, Any]) -> Job:
        """A job from the page's settings, parsed into a `SampleRequest` and checked as the CLI checks it (a
        GenseqError names the fix). What the page leaves out is not chosen: the model's own defaults fill it in."""
        model_id = request.get("model")
        if not isinstance(model_id, str):
            raise InputError(f"unknown model {model_id!r}; pick one from the list")
        model = self.model(model_id)
        options = _options(request, length=_number_reader(request)("length", int, None),
                           stop_at_end=_flag(request.get("stop_at_end")),
                           voice_leading=_flag(request.get("voice_leading")), full_bars=_flag(request.get("full_bars")))
        sample, shown = self._request(model_id, request, options)
        prepared = sample.prepare(model)
        settings = {**prepared.settings(), **shown}
        return Job(secrets.token_hex(6), model_id, prepared, settings)

    def _request(self, model_id: str, request: dict[str, Any],
                 options: SampleOptions) -> tuple[api.SampleRequest, dict[str, Any]]:
        """The page's request as a `SampleRequest` (a melody upload is harmonised, any other primer continued),
        and how its primer is shown in the result."""
        text = request.get("primer") or ""
        if not isinstance(text, str) or len(text) > MAX_PRIMER_CHARS:
            raise InputError(f"the primer must be text of at most {MAX_PRIMER_CHARS:,} characters")
        upload = request.get("upload")
        if upload:
            if not isinstance(upload, str) or upload not in self._uploads or self._uploads[upload][0] != model_id:
                raise InputError("the uploaded primer is gone or was for another model; upload it again")
            _, name, primer, melody_length = self._uploads[upload]
            if melody_length:  # as long as the melody, whatever the form said
                options["length"] = melody_length
                return api.SampleRequest(options, melody=primer, output_dir=self.folder), {"melody": name}
            return api.SampleRequest(options, primer=primer, output_dir=self.folder), {"primer": name}
        header = {k: request[k] for k in ("meter", "key", "unit_length") if request.get(k)}
        if not all(isinstance(v, str) for v in header.values()):
            raise InputError("meter, key and unit length must be text, e.g. 6/8, G and 1/8")
        transpose = _number_reader(request)("transpose", int, 0)
        return (api.SampleRequest(options, primer=text or None, transpose=transpose, output_dir=self.folder,
                                  **header),
                {"primer": text, "transpose": transpose})

    def refill(self, request: dict[str, Any]) -> Job:
        """A job that draws a span of a kept result's sample again (`TrainedModel.infill`): the piece is looked up by
        its result's id and sample number, never sent or named as a path; the library checks the span and the voices
        (a one-line GenseqError). Only the sampler's distribution, seed, precision, versions and candidates are taken:
        a fill is as long as its span and written under its own rules."""
        parent, number, piece = self._piece(request)
        span, voices = request.get("span"), request.get("voices") or None
        if not isinstance(span, str) or not span.strip() or len(span) > MAX_SPAN_CHARS:
            raise InputError("name the span to draw again, e.g. 5-8 (bars of a tune), 9-16 (beats of a chorale), "
                             "12.5-20 (seconds of MIDI) or 120-180 (characters of a text)")
        if voices is not None and (not isinstance(voices, str) or len(voices) > MAX_SPAN_CHARS):
            raise InputError("name the voices to draw again as text, e.g. alto,tenor (none: all of them)")
        candidates = _number_reader(request)("candidates", int, CANDIDATES)
        if not 0 < candidates <= MAX_CANDIDATES:
            raise InputError(f"candidates must lie in 1..{MAX_CANDIDATES}, got {candidates}")
        model = self.model(parent["model"])
        unit = INFILL_UNITS.get(model.tokenizer.kind)
        if unit is None:
            raise InputError(f"the studio draws again spans of pieces of {', '.join(INFILL_UNITS)} models; this is a "
                             f"{model.tokenizer.kind} model")
        sample = api.SampleRequest(_options(request), piece=piece, span=span, unit=unit, voices=voices,
                                   candidates=candidates, output_dir=self.folder)
        prepared = sample.prepare(model)
        record = {"of": parent["id"], "sample": number, "root": _root(parent), "unit": unit,
                  **self._where(prepared, parent, number, span)}
        shown = [f"{record[k]:g}" if isinstance(record[k], float) else str(record[k]) for k in ("first", "last")]
        settings = {**prepared.settings(), "span": "-".join(shown), "candidates": candidates}
        if voices is not None:
            settings["voices"] = record["voices"] = voices
        return Job(secrets.token_hex(6), parent["model"], prepared, settings, infill=record)

    def _where(self, prepared: api.PreparedSample, parent: dict[str, Any], number: int, span: str) -> dict[str, Any]:
        """Where a span the library accepted lies (`PreparedSample.span`): its first and last as the user counts
        them; in a text, the characters it replaces (and how many follow it); in MIDI, when it sounds, in seconds
        (for the piano roll)."""
        model, found, piece = prepared.model, prepared.span, prepared.primer
        assert found is not None
        if isinstance(piece, str):
            assert found.size is not None
            return {"first": found.first, "last": found.first + found.size - 1, "start": found.start,
                    "end": found.end, "after": len(piece) - found.end}
        if INFILL_UNITS[model.tokenizer.kind] == "beats":
            assert found.size is not None
            midi = self.download(parent["id"], number - 1, "mid")[0]
            return {"first": found.first, "last": found.first + found.size - 1,
                    "seconds": beats_in_seconds(midi, found.start, found.end)}
        first, last = parse_seconds(span)  # as asked; the fill lies on the model's grid, which `seconds` shades
        assert isinstance(model.tokenizer, MidiEncoding)
        steps = model.tokenizer.step_seconds(piece, [found.start, found.end])
        return {"first": first, "last": last, "seconds": [round(float(t), 3) for t in steps]}

    def _piece(self, request: dict[str, Any]) -> tuple[dict[str, Any], int, str | bytes]:
        """The kept result, the sample number (from 1) and the piece a refill request names: a sample's text, or
        the bytes of its MIDI file."""
        result_id = request.get("result")
        parent = self.results.get(result_id) if isinstance(result_id, str) else None
        if parent is None:
            raise InputError(f"no result {str(result_id)[:40]!r} to draw again; pick one from the history")
        number = _number_reader(request)("sample", int, 1)
        if not 0 < number <= len(parent["samples"]):
            raise InputError(f"result {parent['id']} has no sample {number}")
        text = parent["samples"][number - 1].get("text")
        if isinstance(text, str):
            return parent, number, text
        try:
            midi = self.download(parent["id"], number - 1, "mid")[0]
        except LookupError:
            raise InputError(f"sample {number} of result {parent['id']} is neither text nor MIDI: the studio draws "
                             "again spans of tunes, texts and MIDI pieces") from None
        if midi.stat().st_size > MAX_FILE_BYTES:
            raise InputError(f"sample {number} of result {parent['id']} is over the {MAX_FILE_BYTES // 2**20} MiB cap "
                             "for a MIDI piece")
        return parent, number, midi.read_bytes()

    def enqueue(self, job: Job) -> None:
        self.waiting.append(job)

    def position(self, job: Job) -> int:
        """1 when the job runs next (or now), 2 behind one other, ..."""
        return self.waiting.index(job) + 1 + (self.running is not None) if job in self.waiting else 0

    def try_start(self, job: Job) -> bool:
        """Take the one generation slot if it is free and this job is first in line (called on the event loop)."""
        if self.running is None and self.waiting and self.waiting[0] is job:
            self.running = self.waiting.pop(0)
            return True
        return False

    def withdraw(self, job: Job) -> None:
        if job in self.waiting:
            self.waiting.remove(job)

    def close(self) -> None:
        """The server is going down: waiting jobs end, the running one stops at its next token."""
        self.closing = True
        for job in [self.running, *self.waiting]:
            if job is not None:
                job.stop_reason = "shutdown"

    def finish(self, job: Job) -> None:
        if self.running is job:
            self.running = None

    def run(self, job: Job, emit: Callable[[str, dict[str, Any]], None]) -> dict[str, Any] | None:
        """Sample, stream what is drawn, write the files and the result record (in a worker thread).

        Returns the result, or None when the client went away (nothing is kept then).
        """
        try:
            model = self.model(job.model_id)
            tokenizer = model.tokenizer
            shown = [tokenizer.decode([i]) if tokenizer.kind in ("char", "abc") else tokenizer.token_name(i) + " "
                     for i in range(tokenizer.vocab_size)]
            shown[tokenizer.end_of_document] = ""
            config = job.prepared.config
            written = [""] * config.num_samples
            ended = [False] * config.num_samples
            ends_at_piece = config.stop_at_end  # else the sample runs on past an end token
            steps, last_flush, started = [0], [time.monotonic()], time.monotonic()

            def flush() -> None:
                emit("tokens", {"step": steps[0], "text": written.copy()})
                written[:] = [""] * len(written)
                last_flush[0] = time.monotonic()

            def on_step(tokens: Any) -> None:
                steps[0] += 1
                for row, token in enumerate(tokens.tolist()):
                    if not ended[row]:
                        ended[row] = ends_at_piece and token == tokenizer.end_of_document
                        written[row] += shown[token]
                if time.monotonic() - last_flush[0] >= FLUSH_SECONDS:
                    flush()
                if job.stop_reason is not None:
                    raise StopSampling

            try:
                samples = job.prepared.draw(on_step)
            except GenseqError:
                if job.infill is None or job.stop_reason is None:
                    raise
                samples = []  # a refill stopped before any candidate closed its span
            flush()
            if job.stop_reason in ("disconnected", "shutdown"):
                return None
            if job.infill is not None and job.stop_reason == "stop":
                raise GenseqError(REFILL_STOPPED)
            emit("rendering", {"samples": len(samples)})
            return self._keep(job, model, samples, steps[0], time.monotonic() - started)
        finally:
            job.finished.set()

    # results --------------------------------------------------------------------------------------------------

    def _keep(self, job: Job, model: api.TrainedModel, samples: list[Any], steps: int,
              seconds: float) -> dict[str, Any]:
        result_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        folder = job.prepared.request.output_dir / result_id
        try:
            return self._write_result(job, model, samples, steps, seconds, folder)
        except BaseException:  # a full disk, a failed render: no folder is left without its result.json
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def _write_result(self, job: Job, model: api.TrainedModel, samples: list[Any], steps: int, seconds: float,
                      folder: Path) -> dict[str, Any]:
        """The samples' files, then result.json (written last: the record that makes them a result)."""
        result_id = folder.name
        kind = model.tokenizer.kind
        outputs = export.Outputs(wav=kind != "char", score=kind in SCORED_KINDS)
        exported = export.export_samples(samples, model.tokenizer, folder, outputs, {},
                                         own_titles=job.infill is not None)  # a refilled piece keeps its title
        entries = []
        for entry in exported.files:
            paths = [Path(entry[key]) for key in _EXPORTED if entry.get(key) is not None]
            files = {path.suffix[1:]: path.name for path in paths}
            entries.append({"name": Path(entry["name"]).stem, "text": entry.get("text"), "note": entry.get("note"),
                            "files": files, "notes": midi_notes(folder / files["mid"]) if "mid" in files else []})
        data = model.payload.get("data") or {}
        result = {"id": result_id, "created": time.strftime("%Y-%m-%d %H:%M:%S"), "model": job.model_id,
                  "kind": kind, "corpus": data.get("corpus") or data.get("source"), "settings": job.settings,
                  "steps": steps,
                  "seconds": round(seconds, 2), "stopped": job.stop_reason == "stop", "samples": entries}
        if job.infill is not None:
            result["infill"] = job.infill
        write_atomic(folder / "result.json", json.dumps(result, indent=1))
        self.results[result_id] = result
        return result

    def _read_results(self) -> dict[str, dict[str, Any]]:
        """Results kept by earlier sessions; records the studio did not write (or cannot read) are skipped and
        counted in `skipped`, and no symbolic link is followed."""
        results, self.skipped = {}, 0
        for path in sorted(self.folder.glob("*/result.json")):
            record = None
            if not (path.parent.is_symlink() or path.is_symlink()) and path.is_file():
                try:
                    record = json.loads(path.read_bytes().decode("utf-8"))
                except (OSError, ValueError):
                    record = None
            if _is_result(record, path.parent.name):
                results[record["id"]] = record
            else:
                self.skipped += 1
        return results

    def history(self) -> list[dict[str, Any]]:
        """Every kept result, newest first, without its notes and texts (the page asks for one when shown)."""
        return [{k: v for k, v in r.items() if k != "samples"} | {"samples": len(r["samples"])}
                for r in sorted(self.results.values(), key=lambda r: r["id"], reverse=True)]

    def result(self, result_id: str) -> dict[str, Any]:
        """A kept result as the page shows it: with the ids of every version of its piece, oldest first (the
        original, then each refill of it or of a refill), and for a tune, the number of each written bar."""
        found = self.results.get(result_id)
        if found is None:
            raise LookupError(f"no result {result_id!r}")
        root = _root(found)
        versions = sorted(r["id"] for r in self.results.values() if _root(r) == root)
        return found | {"samples": [self._shown(found, s, i) for i, s in enumerate(found["samples"])],
                        "versions": versions}

    def _shown(self, result: dict[str, Any], sample: dict[str, Any], index: int) -> dict[str, Any]:
        """A sample as the page shows it: for a tune, the number of each written bar (None for a pickup), for its
        score; for a chorale, when each beat starts (`rolls.beat_times`), for its piano roll."""
        if result.get("kind") == "abc" and isinstance(sample.get("text"), str):
            return sample | {"bars": bar_numbers(sample["text"])}
        if INFILL_UNITS.get(result.get("kind", "")) == "beats" and "mid" in sample["files"]:
            try:
                return sample | {"beats": beat_times(self.download(result["id"], index, "mid")[0])}
            except LookupError:
                return sample
        return sample

    def download(self, result_id: str, index: int, kind: str) -> tuple[Path, str, str]:
        """(path, media type, download name) of a file the studio wrote; ids are looked up, never joined raw."""
        result = self.results.get(result_id)
        if result is None:
            raise LookupError(f"no result {result_id!r}")
        if not 0 <= index < len(result["samples"]):
            raise LookupError(f"result {result_id} has no sample {index + 1}")
        name = result["samples"][index]["files"].get(kind)
        if kind not in DOWNLOADS or name is None:
            raise LookupError(f"sample {index + 1} of result {result_id} has no .{kind} file")
        path = self.folder / result_id / name
        if path.is_symlink() or not path.is_file():  # a record names its files; a link among them is not ours
            raise LookupError(f"sample {index + 1} of result {result_id} has no .{kind} file")
        return path, DOWNLOADS[kind], f"genseq-{result_id}-{index + 1}.{kind}"


def _root(result: dict[str, Any]) -> str:
    """The id of the original a result is a version of (itself, unless it is a refill)."""
    return result["infill"]["root"] if "infill" in result else result["id"]


def _is_result(record: Any, folder_name: str) -> bool:
    """Whether `record` is a result.json the studio wrote into the folder `folder_name`: its own id, samples whose
    files are plain names in that folder (no path, no link), each of the suffix it is offered as."""
    if not (isinstance(record, dict) and record.get("id") == folder_name and _RESULT_ID.fullmatch(folder_name)):
        return False
    samples = record.get("samples")
    if not isinstance(samples, list) or not isinstance(record.get("settings"), dict):
        return False
    refill = record.get("infill")
    if refill is not None and not _is_refill(refill):
        return False
    for sample in samples:
        files = sample.get("files") if isinstance(sample, dict) else None
        if not isinstance(files, dict) or not isinstance(sample.get("notes"), list):
            return False
        for kind, name in files.items():
            if kind not in DOWNLOADS or not isinstance(name, str) or not PLAIN_NAME.fullmatch(name) \
                    or not name.endswith(f".{kind}"):
                return False
    return True


def _is_refill(record: Any) -> bool:
    """Whether a result's `infill` is as `Studio.refill` writes it: the ids it names, where its span lies (in its
    text, or in seconds), the voices drawn again (a chorale's, where named)."""
    if not (isinstance(record, dict) and all(isinstance(record.get(k), str) for k in ("of", "root"))
            and type(record.get("sample")) is int and isinstance(record.get("voices"), str | None)):
        return False
    if record.get("unit") in TEXT_UNITS:
        return all(type(record.get(k)) is int for k in ("first", "last", "start", "end", "after"))
    seconds = record.get("seconds")
    return (record.get("unit") in ROLL_UNITS and isinstance(seconds, list) and len(seconds) == 2
            and all(_is_number(value) for value in (record.get("first"), record.get("last"), *seconds)))


def _is_number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _read_file(model: api.TrainedModel, path: Path) -> tuple[str, Any, int | None]:
    """("melody", its Score, the tokens a setting of it takes) for a voices model given one melody (.abc, or MIDI
    of one pitched track), which the samples harmonise; else ("primer", what the model reads from the file, None)."""
    voices = model.tokenizer.kind == "voices"
    if voices and path.suffix.lower() == ".abc":
        melody = read_melody(model.tokenizer, path)
    else:
        primer = model.read_primer(path)
        if not (voices and len(pitched_tracks(primer)) == 1):
            return "primer", primer, None
        melody = primer
    template, _ = melody_template(model.tokenizer, melody)  # a melody the model cannot set fails now, in one line
    return "melody", melody, len(template) + 1


def _options(request: dict[str, Any], **more: Any) -> SampleOptions:
    """The sampler's distribution, versions, seed and precision a request names (and `more` options), checked as
    the CLI checks them; a seed is drawn when none is named, so that the result can show it."""
    number = _number_reader(request)
    precision = request.get("precision") or None
    if not isinstance(precision, str | None):
        raise InputError(f"--precision must be auto, fp32, bf16 or int8, got {precision!r}")
    options = SampleOptions(
        temperature=number("temperature", float, None), top_k=number("top_k", int, None),
        top_p=number("top_p", float, None), num_samples=number("num_samples", int, None),
        seed=number("seed", int, None), precision=precision, **more)
    if options.get("length") is not None and not 0 < options["length"] <= MAX_LENGTH:
        raise InputError(f"length must lie in 1..{MAX_LENGTH:,}, got {options['length']}")
    if options["num_samples"] is not None and not 0 < options["num_samples"] <= MAX_SAMPLES:
        raise InputError(f"number of samples must lie in 1..{MAX_SAMPLES}, got {options['num_samples']}")
    if options["seed"] is None:
        options["seed"] = secrets.randbelow(2**31)
    return options


def _number_reader(request: dict[str, Any]) -> Callable[[str, type, Any], Any]:
    def number(key: str, kind: type, default: Any) -> Any:
        return read_json_number(key, request.get(key), kind, default)
    return number


def _flag(value: Any) -> bool | None:
    """A checkbox's value as the page or a script sends it (absent: None, not chosen)."""
    return None if value is None else value not in (False, "false", "off", "0", 0)
