"""The Python API: `train`, `load` and the loaded model's `sample` / `evaluate` / `info`.

This is the one place that joins sources, tokenizers and the model; the CLI is a thin layer over it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.markup import escape

from genseq import export, render
from genseq.augment import augment_documents, copies_per_document
from genseq.bar_lengths import FullBars
from genseq.checkpoint import load_checkpoint, resolve_checkpoint, save_checkpoint
from genseq.config import ModelConfig, SampleConfig, TrainConfig, from_dict, to_dict
from genseq.console import counting_bar, say, training_bar
from genseq.corpora import (
    Document,
    builtin_corpora,
    builtin_documents,
    cache_dir,
    find_documents,
    guess_tokenizer,
    source_identity,
    split_documents,
)
from genseq.data import (
    TokenCache,
    build_token_cache,
    cache_key,
    check_some_read,
    encoded_documents,
    evaluation_windows,
    first_document,
    load_token_cache,
)
from genseq.distributed import world
from genseq.errors import CheckpointError, ConfigError, GenseqError, InputError
from genseq.files import write_atomic
from genseq.harmonize import CANDIDATES, GivenVoice, melody_log_likelihood, melody_template
from genseq.model import LSTMLanguageModel
from genseq.planning import Plan, StepProbe, make_plan
from genseq.runtime import available_cores, choose_device, set_threads
from genseq.sampling import Rules, TokenRule, generate
from genseq.tokenizers import TOKENIZERS, Tokenizer, new_tokenizer_settings, tokenizer_from_dict
from genseq.tokenizers.midi import MIDI_SUFFIXES, MidiEncoding
from genseq.training import RunResult, Trainer, read_metrics, resume_payload
from genseq.valid_header import ValidHeader
from genseq.voice_leading import VoiceLeading

DEFAULT_RUNS = Path("checkpoints")
DISTRIBUTION_OPTIONS = {"temperature", "top_k", "top_p"}
"""Sampling options that shape the next-token distribution; a checkpoint's defaults for them go as one."""
RULES_BY_KIND = {"abc": {"full_bars": True}, "voices": {"voice_leading": True}}
"""The sampling rules every model of a kind samples under unless told otherwise (`--free-bars`, `--free-voices`):
the judge found them better for both shipped models (README: "The shipped models, judged")."""
BUDGETS = ("steps", "epochs", "minutes")


@dataclass
class PreparedData:
    tokenizer: Tokenizer
    train: TokenCache
    val: TokenCache
    description: dict[str, Any]


def _documents(
    source: str | None, corpus: str | None, tokenizer: str | None, encoding: str
) -> tuple[list[Document], str]:
    if (source is None) == (corpus is None):
        raise InputError("name exactly one data source: a file, folder or glob, or --corpus NAME")
    if corpus is not None:
        documents, recipe = builtin_documents(corpus)
        return documents, tokenizer or recipe["tokenizer"]
    kind = tokenizer or guess_tokenizer(source)
    return find_documents(source, kind, encoding), kind


def _build_tokenizer(kind: str, documents: list[Document]) -> Tokenizer:
    """A tokenizer for `documents`; a fitted vocabulary is cached so unchanged data is read once."""
    if kind not in TOKENIZERS:
        raise InputError(f"unknown tokenizer {kind!r}; known: {', '.join(sorted(TOKENIZERS))}")
    cls = TOKENIZERS[kind]
    key = cache_key(documents, {"vocabulary": new_tokenizer_settings()[kind]})
    path = cache_dir() / "vocab" / f"{kind}-{key}.json"
    if path.exists():
        return tokenizer_from_dict(json.loads(path.read_text(encoding="utf-8")))
    tokenizer = cls.build(documents)
    write_atomic(path, json.dumps(tokenizer.to_dict()))
    return tokenizer


def _token_cache(documents: list[Document], tokenizer: Tokenizer, label: str, progress: bool) -> TokenCache:
    path = cache_dir() / "tokens" / f"{cache_key(documents, tokenizer.to_dict())}.bin"
    cached = load_token_cache(path)
    if cached is not None:
        return cached
    workers = available_cores()
    with counting_bar(f"tokenizing {label}", len(documents), enabled=progress) as advance:
        return build_token_cache(documents, tokenizer, path, workers=workers, progress=advance)


def prepare_data(
    source: str | None = None,
    *,
    corpus: str | None = None,
    tokenizer: str | Tokenizer | None = None,
    encoding: str = "utf-8",
    val_fraction: float = 0.1,
    seed: int = 1337,
    augment: str | None = None,
    progress: bool = True,
) -> PreparedData:
    """Documents -> train/validation split -> tokenizer -> token caches (built once, then memory-mapped).

    `augment` (MIDI only, e.g. "transpose=-5..6,stretch=0.9..1.1") adds transformed copies of the
    training documents; validation stays on the real pieces.
    """
    given = tokenizer.to_dict() if isinstance(tokenizer, Tokenizer) else tokenizer
    source = None if source is None else str(source)
    settings = [source, corpus, given, encoding, val_fraction, seed, augment, new_tokenizer_settings()]
    record_path = cache_dir() / "prepared" / f"{cache_key([], [source_identity(source, corpus), *settings])}.json"
    prepared = _read_prepared(record_path)
    if prepared is not None:
        return prepared
    kind = tokenizer.kind if isinstance(tokenizer, Tokenizer) else tokenizer
    documents, kind = _documents(source, corpus, kind, encoding)
    split = split_documents(documents, val_fraction, seed)
    if not isinstance(tokenizer, Tokenizer):
        tokenizer = _build_tokenizer(kind, documents)
    if augment:
        if not tokenizer.reads_midi:
            raise ConfigError(f"--augment works on MIDI data; this run uses the {kind} tokenizer")
        split.train = augment_documents(split.train, augment)
    train = _token_cache(split.train, tokenizer, "train split", progress)
    val = _token_cache(split.val, tokenizer, "validation split", progress)
    origin = {doc.name: getattr(doc, "document", doc).name for doc in split.train}  # augmented copies: their file
    reasons = {origin.get(name, name): reason for name, reason in train.skipped + val.skipped}
    _warn_skipped(reasons, len(documents))
    description = {
        "source": source, "corpus": corpus, "tokenizer_kind": kind,
        "encoding": encoding, "augment": augment, "documents": len(documents), "train_documents": train.documents,
        "val_documents": val.documents, "train_tokens": len(train), "val_tokens": len(val), "skipped": len(reasons),
    }
    if corpus is not None and not augment:  # `genseq corpus list` shows the corpus itself, not augmented copies
        stats = cache_dir() / "corpora" / f"{corpus}.json"
        write_atomic(stats, json.dumps(description))
    write_atomic(record_path, json.dumps({
        "tokenizer": tokenizer.to_dict(), "train": train.path, "val": val.path, "description": description,
        "skipped": reasons}))
    return PreparedData(tokenizer, train, val, description)


def _read_prepared(path: Path) -> PreparedData | None:
    """What `prepare_data` found last time for unchanged sources and settings (no document is read again)."""
    if not path.exists():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    train, val = load_token_cache(Path(record["train"])), load_token_cache(Path(record["val"]))
    if train is None or val is None:
        return None
    _warn_skipped(record["skipped"], record["description"]["documents"])
    return PreparedData(tokenizer_from_dict(record["tokenizer"]), train, val, record["description"])


def _warn_skipped(reasons: dict[str, str], total: int) -> None:
    """Printed even when quiet, and on every run: a user must know what was left out."""
    for name in sorted(reasons):
        say(f"[yellow]warning:[/] skipped {reasons[name]}")
    if reasons:
        say(f"skipped {len(reasons)} file(s) of {total} that could not be read or encoded (reasons above)")


def corpus_summaries() -> list[dict[str, Any]]:
    """Each built-in corpus with its recipe and, once built, its document and token counts."""
    rows = []
    for name, recipe in sorted(builtin_corpora().items()):
        stats_path = cache_dir() / "corpora" / f"{name}.json"
        stats = json.loads(stats_path.read_text(encoding="utf-8")) if stats_path.exists() else {}
        rows.append({
            "name": name, "description": recipe.get("description", ""), "tokenizer": recipe["tokenizer"],
            "documents": stats.get("documents"), "tokens": stats.get("train_tokens", 0) + stats.get("val_tokens", 0)
            if stats else None,
        })
    return rows


def _new_run_dir(source: str | None, corpus: str | None, name: str | None) -> Path:
    stem = name or f"{corpus or Path(str(source).rstrip('/')).stem or 'run'}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = DEFAULT_RUNS / stem if name is None or os.sep not in name else Path(name)
    if (run_dir / "last.pt").exists():
        raise InputError(
            f"run folder {run_dir} already holds a run; resume it with --resume {run_dir} or pick another --name"
        )
    return run_dir


def _planned(source: str | None, corpus: str | None, tokenizer: str | None, encoding: str, augment: str | None,
             size: str | None, model: ModelConfig | dict[str, Any] | None, train_options: dict[str, Any],
             progress: bool) -> tuple[Plan, PreparedData, ModelConfig, TrainConfig]:
    """The data of a new run and the plan for it: explicit settings win, `size` auto chooses the rest."""
    here = world()
    train_options = {k: v for k, v in train_options.items() if v is not None}
    config = TrainConfig(**train_options)  # checks the settings before any data is read
    prepared = here.first_then_others(lambda: prepare_data(
        source, corpus=corpus, tokenizer=tokenizer, encoding=encoding, augment=augment,
        val_fraction=config.val_fraction, seed=config.seed, progress=progress))
    model_options = to_dict(model) if isinstance(model, ModelConfig) else dict(model or {})
    device = choose_device(config.device)
    set_threads(config.threads)
    probe = StepProbe(device, torch.get_num_threads(), cache_dir())
    run_plan = here.first_then_others(lambda: make_plan(
        vocab_size=prepared.tokenizer.vocab_size, train_tokens=len(prepared.train), model_options=model_options,
        train_options=train_options, size=size, device=device, step_seconds=probe,
        copies=copies_per_document(augment)))
    model_options.update(vocab_size=prepared.tokenizer.vocab_size, num_layers=run_plan.num_layers,
                         hidden_size=run_plan.hidden_size, dropout=run_plan.dropout,
                         locked_dropout=run_plan.locked_dropout)
    config = dataclasses.replace(config, seq_len=run_plan.seq_len, batch_size=run_plan.batch_size,
                                 precision=run_plan.precision, learning_rate=run_plan.learning_rate,
                                 weight_decay=run_plan.weight_decay)
    return run_plan, prepared, ModelConfig(**model_options), config


def plan(
    source: str | None = None,
    *,
    corpus: str | None = None,
    tokenizer: str | None = None,
    encoding: str = "utf-8",
    augment: str | None = None,
    size: str | None = "auto",
    model: ModelConfig | dict[str, Any] | None = None,
    progress: bool = True,
    **train_options: Any,
) -> Plan:
    """What `train` with the same arguments would train (shape, precision, regularisation, schedule), without
    training."""
    return _planned(source, corpus, tokenizer, encoding, augment, size, model, train_options, progress)[0]


def train(
    source: str | None = None,
    *,
    corpus: str | None = None,
    tokenizer: str | None = None,
    encoding: str = "utf-8",
    augment: str | None = None,
    name: str | None = None,
    resume: str | Path | None = None,
    progress: bool = True,
    tensorboard: bool = False,
    size: str | None = "auto",
    model: ModelConfig | dict[str, Any] | None = None,
    **train_options: Any,
) -> RunResult:
    """Train a model on a file, folder, glob or built-in corpus; or resume the run in folder `resume`.

    `model` holds ModelConfig fields (hidden_size, num_layers, dropout, ...); `train_options`
    are TrainConfig fields (seq_len, batch_size, minutes, steps, ...). What is not given is planned
    for the budget on this machine (`size="auto"`, see `plan` and `genseq.planning`); `size` may also
    name a preset of `planning.SIZES`. Returns the run's result,
    whose `run_dir` holds best.pt, last.pt, config.json and metrics.jsonl.

    Under `torchrun` every process calls this; the first one prepares the data and writes the files.
    """
    if tensorboard and importlib.util.find_spec("tensorboard") is None:  # say so before anything is written
        raise ConfigError("--tensorboard needs the tensorboard package: pip install 'genseq[tensorboard]'")
    here = world()
    progress = progress and here.is_main
    if resume is not None:
        changed = sorted({*(model or {}), *(k for k, v in train_options.items() if v is not None),
                          *(["size"] if size not in (None, "auto") else [])} - set(BUDGETS))
        if changed or source is not None or corpus is not None:
            named = ", ".join(changed) or "the data source"
            raise ConfigError(f"--resume continues a run with its own data and settings; only a new budget "
                              f"(--steps, --epochs or --minutes) may be given, not {named}")
        payload = resume_payload(Path(resume))
        if not isinstance(payload.get("data"), dict) or not isinstance(payload.get("tokenizer"), dict):
            raise CheckpointError(f"{resume}/last.pt names no data source or tokenizer (a Trainer's own checkpoint?); "
                                  "resume it with Trainer.resume, or start a new run")
        data = payload["data"]
        prepared = here.first_then_others(lambda: prepare_data(
            data["source"], corpus=data["corpus"], tokenizer=tokenizer_from_dict(payload["tokenizer"]),
            encoding=data["encoding"], val_fraction=payload["train_config"]["val_fraction"],
            seed=payload["train_config"]["seed"], augment=data.get("augment"), progress=progress,
        ))
        model_config = from_dict(ModelConfig, payload["model_config"])
        given = {k: v for k, v in train_options.items() if k in BUDGETS and v is not None}
        budget = {"steps": None, "epochs": None, "minutes": None, **given} if given else {}
        config = from_dict(TrainConfig, {**payload["train_config"], **budget})  # a new budget replaces the old
        run_dir = Path(resume)
    else:
        payload = None
        run_plan, prepared, model_config, config = _planned(source, corpus, tokenizer, encoding, augment, size, model,
                                                            train_options, progress)
        run_dir = here.broadcast(_new_run_dir(source, corpus, name) if here.is_main else None)
    meta = {"tokenizer": prepared.tokenizer.to_dict(), "data": prepared.description,
            "prelude": first_document(prepared.val.tokens, prepared.tokenizer.end_of_document)}
    trainer = Trainer(model_config, config, prepared.train.tokens, prepared.val.tokens, run_dir, meta, payload)
    if payload is None:  # said once the settings have passed the trainer's checks, so an error stays one line
        say(run_plan.describe(), quiet=not progress)
    if here.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        planned = {"plan": run_plan.to_dict()} if payload is None else \
            {"plan": json.loads((run_dir / "config.json").read_text(encoding="utf-8")).get("plan")} \
            if (run_dir / "config.json").exists() else {}
        write_atomic(run_dir / "config.json", json.dumps(
            {"model": to_dict(model_config), "train": to_dict(config), "data": prepared.description,
             "device": str(trainer.device), "precision": trainer.precision, "processes": here.size, **planned},
            indent=2) + "\n")
    say(f"run {run_dir}: {model_config.num_layers}x{model_config.hidden_size} LSTM, "
        f"{trainer.model.num_parameters():,} parameters, vocab {model_config.vocab_size}, "
        f"{len(prepared.train):,} train / {len(prepared.val):,} validation tokens, "
        f"{trainer.device} {trainer.precision}", quiet=not progress)
    can_plot = [importlib.util.find_spec("matplotlib") is not None]
    board = _tensorboard_writer(run_dir) if tensorboard and here.is_main else None
    with training_bar(enabled=progress) as update:
        last_val = ["-"]

        def on_step(t: Trainer, loss: float) -> None:
            p = t.progress
            if p.step % 5 == 0 or p.step == 1:
                rate = p.tokens_seen / max(p.elapsed_seconds, 1e-9)
                update(t.fraction_done(), {"step": p.step, "loss": f"{loss:.3f}", "val": last_val[0],
                                           "tok_s": f"{rate:,.0f}"})

        def on_eval(t: Trainer, record: dict) -> None:
            last_val[0] = f"{record['val_loss']:.3f}"
            if can_plot[0] and here.is_main:
                try:
                    render.loss_curve_png(read_metrics(run_dir), run_dir / "loss.png")
                except GenseqError as err:  # the plot is a convenience: training goes on, once warned
                    say(f"[yellow]warning:[/] {escape(str(err))}; no more loss plots in this run")
                    can_plot[0] = False
            if board is not None:
                for key in ("train_loss", "val_loss", "lr", "tokens_per_s"):
                    if record.get(key) is not None:
                        board.add_scalar(key, record[key], record["step"])
                board.flush()

        result = trainer.run(on_step, on_eval)
    say(f"best validation loss {result.progress.best_val_loss:.4f} nats/token "
        f"({result.progress.best_val_loss / math.log(2):.4f} bits) after {result.progress.step} steps; "
        f"checkpoints in {run_dir}", quiet=not progress)
    return result


def _tensorboard_writer(run_dir: Path) -> Any:
    """A TensorBoard writer logging into `run_dir/tensorboard` (the optional `tensorboard` package)."""
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(run_dir / "tensorboard"))


@dataclass
class EvalResult:
    loss: float
    """Mean cross-entropy in nats per token."""
    tokens: int
    unknown_tokens: int

    @property
    def bits(self) -> float:
        return self.loss / math.log(2)


class TrainedModel:
    """A model rebuilt from one checkpoint file, with its tokenizer: ready to sample and evaluate."""

    def __init__(self, payload: dict[str, Any], path: Path):
        self.path = path
        self.payload = payload
        if "tokenizer" not in payload:
            raise CheckpointError(f"{path} holds no tokenizer (its Trainer was given none): it can resume training "
                                  "but not be sampled or evaluated; train with `genseq train` or genseq.train")
        try:
            self.tokenizer = tokenizer_from_dict(payload["tokenizer"])
            self.config = from_dict(ModelConfig, payload["model_config"])
            self.network = LSTMLanguageModel(self.config)
            self.network.load_state_dict(payload["model"])
        except ConfigError as err:  # a shape too large to hold names its memory; other settings name the file
            raise CheckpointError(f"{path}: its model cannot be built here: {err}") from None
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as err:
            reason = " ".join(str(err).split())[:160]
            raise CheckpointError(f"{path} is a damaged genseq checkpoint: its tokenizer, model settings or weights "
                                  f"do not fit together ({type(err).__name__}: {reason}); give a file written by "
                                  "`genseq train`") from None
        self.network.eval()

    def encode_primer(self, primer: Any) -> list[int]:
        """Token ids of a primer; symbols the model never saw are an error that names them."""
        if primer is None or primer == "":
            return []
        unknown = self.tokenizer.unknown_symbols(primer)
        if unknown:
            shown = ", ".join(repr(s) for s in unknown[:10])
            raise InputError(f"the primer holds {len(unknown)} symbol(s) this model never saw: {shown}; remove them")
        return self.tokenizer.encode(primer)

    @property
    def sample_defaults(self) -> dict[str, Any]:
        """Sampling settings the checkpoint recommends (such as a temperature the judge found better), if any."""
        return dict(self.payload.get("sample_defaults") or {})

    def sample_config(self, **options: Any) -> SampleConfig:
        """The settings a sample is drawn with: `options` (SampleConfig fields; None means not given), then the
        checkpoint's `sample_defaults`, then the rules of its kind (`RULES_BY_KIND`), then SampleConfig's
        defaults. Options that set any of temperature, top_k and top_p replace the defaults of all three: a call
        draws from exactly the distribution it names. Beam search (beam_size > 1) ranks by the model's own
        distribution, so it takes none of those defaults (the rules stay)."""
        given = {k: v for k, v in options.items() if v is not None}
        defaults = {**RULES_BY_KIND.get(self.tokenizer.kind, {}), **self.sample_defaults}
        if given.keys() & DISTRIBUTION_OPTIONS or {**defaults, **given}.get("beam_size", 1) > 1:
            defaults = {k: v for k, v in defaults.items() if k not in DISTRIBUTION_OPTIONS}
        return SampleConfig(**{**defaults, **given})

    def sample_ids(self, primer: Any = None, on_step: Callable[[torch.Tensor], None] | None = None,
                   **options: Any) -> list[list[int]]:
        """Token ids of new samples (without the primer); options are SampleConfig fields (see `sample_config`)."""
        config = self.sample_config(**options)
        return generate(self.network, self.encode_primer(primer), config, self.tokenizer.end_of_document, on_step,
                        prelude=self.payload.get("prelude", ()), rule=self.sampling_rule(config))

    def sampling_rule(self, config: SampleConfig) -> TokenRule | None:
        """The rule `config` asks for (`voice_leading`, `full_bars`); a ConfigError where it is for another kind
        of model (each rule refuses the others' kinds, so at most one is built). Every tune of an ABC model gets
        a valid header (`ValidHeader`) as well."""
        rule = None
        if config.voice_leading:
            rule = VoiceLeading(self.tokenizer)
        if config.full_bars:
            rule = FullBars(self.tokenizer)
        if self.tokenizer.kind == "abc":
            return Rules(ValidHeader(self.tokenizer), rule)
        return rule

    def sample(self, primer: Any = None, include_primer: bool = True,
               on_step: Callable[[torch.Tensor], None] | None = None, **options: Any) -> list[Any]:
        """Decoded samples (text, or PrettyMIDI for MIDI models), each continuing `primer` (and starting
        with it unless `include_primer` is False), finished as its encoding says (`Tokenizer.finish_sample`: an
        ABC tune's `L:`). Options are SampleConfig fields."""
        start = self.encode_primer(primer) if include_primer else []
        return [self.tokenizer.finish_sample(self.tokenizer.decode(start + ids))
                for ids in self.sample_ids(primer, on_step, **options)]

    def harmonize(self, melody: Any, on_step: Callable[[torch.Tensor], None] | None = None,
                  candidates: int = CANDIDATES, **options: Any) -> list[Any]:
        """Settings of `melody` (ABC text, a .abc or .mid file of one track, MIDI bytes, PrettyMIDI) by a voices
        model: the melody is every sample's top voice, as long as it is, and the model writes the voices below
        (under voice leading unless `voice_leading=False`). A melody far from the soprano's range is moved by
        octaves into it, and said so. Each setting is the best of `candidates` drawn, by the likelihood of the
        melody under it (`harmonize.melody_log_likelihood`; beam search ranks by its own). `on_step` sees the
        first candidates' tokens. Options are SampleConfig fields (the melody sets the length)."""
        if candidates < 1:
            raise ConfigError(f"--candidates must be positive, got {candidates}")
        template, shift = melody_template(self.tokenizer, melody)
        if shift:
            octaves = abs(shift) // 12
            say(f"the melody is moved {octaves} octave{'s' if octaves > 1 else ''} {'up' if shift > 0 else 'down'} "
                "into the top voice's range")
        config = self.sample_config(**{**options, "length": len(template) + 1, "stop_at_end": True})
        kept = config.num_samples
        if config.beam_size == 1:
            config = dataclasses.replace(config, num_samples=kept * candidates)
        rule = Rules(self.sampling_rule(config), GivenVoice(self.tokenizer, template))
        context = list(self.payload.get("prelude") or [self.tokenizer.end_of_document])
        shown = None if on_step is None else lambda tokens: on_step(tokens[:kept])
        rows = generate(self.network, [], config, self.tokenizer.end_of_document, shown, prelude=context, rule=rule)
        if len(rows) > kept:
            scores = melody_log_likelihood(self.network, context, template, rows)
            rows = [rows[i] for i in scores.argsort(descending=True)[:kept].tolist()]
        return [self.tokenizer.decode(row) for row in rows]

    def read_primer(self, path: str | Path) -> Any:
        """A primer document from a file, checked against the kind of model (MIDI or text)."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such primer file")
        is_midi = path.suffix.lower() in MIDI_SUFFIXES
        if is_midi != self.tokenizer.reads_midi:
            wanted = "a .mid file" if self.tokenizer.reads_midi else "a text or .abc file"
            raise InputError(f"{path} cannot prime this {self.tokenizer.kind} model; give {wanted}")
        try:
            return self.tokenizer.read_primer(str(path))
        except UnicodeDecodeError as err:
            raise InputError(f"{path} is not UTF-8 text (byte {err.start}); give a UTF-8 primer file") from None

    @torch.no_grad()
    def evaluate(self, source: str, encoding: str = "utf-8", seq_len: int = 256, batch_size: int = 32) -> EvalResult:
        """Cross-entropy of the model on held-out files, documents separated as in training."""
        documents = find_documents(source, self.tokenizer.kind, encoding)
        pieces = [np.array([self.tokenizer.end_of_document], dtype=np.int32)]
        for doc in documents:
            pieces.extend(self.tokenizer.encode_array(piece) for piece in doc.pieces())
            pieces.append(np.array([self.tokenizer.end_of_document], dtype=np.int32))
        tokens = np.concatenate(pieces)
        total, count, state = 0.0, 0, None
        for window in evaluation_windows(tokens, batch_size, seq_len, len(tokens)):
            logits, state = self.network(window[:, :-1], state)
            targets = window[:, 1:]
            total += torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum").item()
            count += targets.numel()
        return EvalResult(total / count, count, int((tokens == self.tokenizer.unknown).sum()))

    def info(self) -> dict[str, Any]:
        p = self.payload
        return {
            "checkpoint": str(self.path),
            "model": to_dict(self.config),
            "parameters": self.network.num_parameters(),
            "tokenizer": self.tokenizer.kind,
            "vocab_size": self.tokenizer.vocab_size,
            "data": p.get("data"),
            "progress": p.get("progress"),
            "train_config": p.get("train_config"),
            "versions": p.get("versions"),
            "created": p.get("created"),
            "sample_defaults": self.sample_defaults,
        }


def export_checkpoint(source: str | Path, destination: str | Path, float16: bool = False) -> Path:
    """A copy of a checkpoint for sampling only: the optimizer and the training state are left out.

    With `float16` the weights are stored in half precision, half the file (loading widens them to float32
    again); a weight beyond float16's range is an error rather than an infinity.
    """
    payload = load_checkpoint(resolve_checkpoint(source))
    training_only = ("optimizer", "scaler", "hidden", "rank_rng", "rng", "format", "version")
    kept = {k: v for k, v in payload.items() if k not in training_only}
    if float16:
        kept["model"] = {name: t.half() if t.is_floating_point() else t for name, t in kept["model"].items()}
        overflowed = [name for name, t in kept["model"].items() if t.is_floating_point() and not t.isfinite().all()]
        if overflowed:
            raise CheckpointError(f"{source}: weights {', '.join(overflowed)} do not fit float16; export without it")
    save_checkpoint(Path(destination), kept)
    return Path(destination)


def load(path: str | Path) -> TrainedModel:
    """A trained model from a checkpoint file or a run folder (its best.pt)."""
    path = resolve_checkpoint(path)
    return TrainedModel(load_checkpoint(path), path)


@dataclass
class EncodedFile:
    name: str
    ids: list[int]
    roundtrip: Path | None = None
    """Where the decoded tokens were written (with `roundtrip_dir`)."""
    kept_notes: int | None = None
    """MIDI round trips: notes that came back within the tokenizer's `round_trip_tolerance`, of `notes`."""
    notes: int | None = None


@dataclass
class Encoding:
    tokenizer: Tokenizer
    files: list[EncodedFile]
    skipped: dict[str, str]
    """Files that could not be read, with the reason (skipped and counted, as training does)."""

    @property
    def notes(self) -> int | None:
        """Notes of every file, and those its round trip kept (MIDI round trips only, else None)."""
        return sum(f.notes for f in self.files) if self.files and self.files[0].notes is not None else None

    @property
    def kept_notes(self) -> int | None:
        return sum(f.kept_notes for f in self.files) if self.notes is not None else None

    @property
    def kept_share(self) -> float | None:
        return self.kept_notes / self.notes if self.notes else None


def encode_files(sources: Sequence[str], tokenizer: str | None = None, roundtrip_dir: str | Path | None = None,
                 force: bool = False) -> Encoding:
    """Token ids of each named file (a char tokenizer is fitted on the files themselves); files that cannot be
    read are skipped and counted. With `roundtrip_dir` the ids are decoded again into files named after their
    sources, and for MIDI the notes each round trip kept are counted."""
    kind = tokenizer or guess_tokenizer(sources[0])
    documents = [doc for source in sources for doc in find_documents(source, kind)]
    coder = _build_tokenizer(kind, documents)
    files, skipped = [], []
    for doc, pieces in encoded_documents(documents, coder, available_cores()):
        if isinstance(pieces, str):
            skipped.append((doc.name, pieces))
        else:
            files.append(EncodedFile(doc.name, [int(i) for ids in pieces for i in ids]))
    check_some_read(len(files), skipped)
    _warn_skipped(dict(skipped), len(documents))
    result = Encoding(coder, files, dict(skipped))
    if roundtrip_dir is not None:
        _round_trip(result, Path(roundtrip_dir), force)
    return result


def _round_trip(encoding: Encoding, folder: Path, force: bool) -> None:
    """Decode each file's ids into `folder` under the file's own name; count the notes MIDI round trips keep."""
    coder = encoding.tokenizer
    decoded = [coder.decode(f.ids) for f in encoding.files]
    written = export.export_samples(decoded, coder, folder, export.Outputs(), {}, force=force,
                                    stems=export.file_stems([f.name for f in encoding.files]))
    for file, document, entry in zip(encoding.files, decoded, written.files, strict=True):
        file.roundtrip = entry.get("text_file") or entry["midi"]
        if isinstance(coder, MidiEncoding):
            file.kept_notes, file.notes = coder.kept_notes(Path(file.name), document)


@dataclass
class Runs:
    rows: list[dict[str, Any]]
    """Each run: its folder, best validation loss, size, data, tokenizer, and its checkpoint file (best.pt, else
    last.pt; None before the first)."""
    skipped: dict[str, str]
    """Folders holding a config.json that genseq did not write or cannot read, or reached through a symbolic link,
    with the reason."""


def find_runs(root: Path = DEFAULT_RUNS) -> Runs:
    """Run folders under `root`, newest first; folders whose config.json genseq did not write (a downloaded model,
    another tool's run) are skipped and named, and no symbolic link is followed."""
    rows, skipped = [], {}
    found = [(p, p.lstat().st_mtime) for p in Path(root).glob("*/config.json")]
    for config_path, _ in sorted(found, key=lambda found: found[1], reverse=True):
        folder = config_path.parent
        try:
            rows.append(_run_row(folder))
        except InputError as err:
            skipped[str(folder)] = str(err)
    return Runs(rows, skipped)


def _run_row(folder: Path) -> dict[str, Any]:
    """One run's row from its config.json and metrics; InputError naming why the folder is not a genseq run."""
    config_path = folder / "config.json"
    if folder.is_symlink() or config_path.is_symlink() or not config_path.is_file():
        raise InputError("a symbolic link (not followed)")
    try:
        config = json.loads(config_path.read_bytes().decode("utf-8"))
    except (OSError, ValueError):
        raise InputError("config.json is not UTF-8 JSON") from None
    model = config.get("model") if isinstance(config, dict) else None
    data = config.get("data") if isinstance(config, dict) else None
    shape = [model.get(k) for k in ("num_layers", "hidden_size")] if isinstance(model, dict) else []
    if not isinstance(data, dict) or len(shape) != 2 or not all(type(v) is int for v in shape):
        raise InputError("config.json was not written by genseq (no model shape or data)")
    metrics = folder / "metrics.jsonl"
    records = read_metrics(folder) if metrics.is_file() and not metrics.is_symlink() else []
    val = [r["val_loss"] for r in records if type(r.get("val_loss")) in (int, float) and math.isfinite(r["val_loss"])]
    checkpoints = [folder / name for name in ("best.pt", "last.pt")]
    checkpoint = next((p for p in checkpoints if p.is_file() and not p.is_symlink()), None)
    named = {k: data.get(k) if isinstance(data.get(k), str) else None for k in ("corpus", "source", "tokenizer_kind")}
    return {"run": str(folder), "best_val_loss": min(val) if val else None, "size": "{}x{}".format(*shape),
            "data": named["corpus"] or named["source"], "tokenizer": named["tokenizer_kind"],
            "checkpoint": None if checkpoint is None else str(checkpoint)}


def list_runs(root: Path = DEFAULT_RUNS) -> list[dict[str, Any]]:
    """Run folders under `root` with their best validation loss, size and data, newest first (see `find_runs`)."""
    return find_runs(root).rows
