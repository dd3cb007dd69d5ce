"""Runs: the plan for a budget, training (new, resumed or distributed), and the run folders on disk."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Unpack

import torch
from rich.markup import escape

from genseq.api.data import PreparedData, prepare_data
from genseq.api.finetune import prepare_finetune
from genseq.api.progress_samples import ProgressSamples, check_cadence, read_cadence
from genseq.console import say, training_bar
from genseq.corpora.augment import copies_per_document
from genseq.errors import CheckpointError, ConfigError, GenseqError, InputError
from genseq.files import DEFAULT_RUNS, cache_dir, write_atomic
from genseq.lm.config import ModelConfig, ModelOptions, TrainConfig, TrainOptions, check_names, from_dict, to_dict
from genseq.lm.data import first_document
from genseq.lm.distributed import world
from genseq.lm.planning import Plan, make_plan
from genseq.lm.probe import StepProbe
from genseq.lm.runtime import choose_device, set_threads
from genseq.lm.training import RunResult, Trainer, read_metrics, resume_payload
from genseq.output import plots
from genseq.tokenizers import tokenizer_from_dict

BUDGETS = ("steps", "epochs", "minutes")



def _new_run_dir(source: str | None, corpus: str | None, name: str | None) -> Path:
    stem = name or f"{corpus or Path(str(source).rstrip('/')).stem or 'run'}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = DEFAULT_RUNS / stem if name is None or os.sep not in name else Path(name)
    if (run_dir / "last.pt").exists():
        raise InputError(
            f"run folder {run_dir} already holds a run; resume it with --resume {run_dir} or pick another --name"
        )
    return run_dir


def _planned(source: str | None, corpus: str | None, tokenizer: str | None, encoding: str, augment: str | None,
             size: str | None, model: ModelConfig | ModelOptions | None, train_options: TrainOptions,
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
                                 weight_decay=run_plan.weight_decay, warmup_steps=run_plan.warmup_steps,
                                 eval_every=run_plan.eval_every)  # the schedule printed is the one run
    return run_plan, prepared, ModelConfig(**model_options), config


def _check_names(model: ModelConfig | ModelOptions | None, train_options: TrainOptions) -> None:
    """A typo among the settings is a one-line ConfigError naming the setting meant, before anything is read."""
    if isinstance(model, dict):
        check_names(model, ModelConfig, "model setting")
    check_names(train_options, TrainConfig, "training option")


def _check_fine_tune(start_from: str | Path, resume: str | Path | None, size: str | None,
                     model: ModelConfig | ModelOptions | None) -> None:
    """--from keeps the base model's shape: a ConfigError naming what was given that would change it."""
    shaped = sorted({*(["model"] if isinstance(model, ModelConfig) else model or {}),
                     *(["size"] if size not in (None, "auto") else [])})
    if resume is not None or shaped:
        named = "--resume" if resume is not None else ", ".join(shaped)
        raise ConfigError(f"--from {start_from} starts a new run with that model's shape and tokenizer; {named} "
                          "cannot be given with it")


def plan(
    source: str | None = None,
    *,
    corpus: str | None = None,
    tokenizer: str | None = None,
    encoding: str = "utf-8",
    augment: str | None = None,
    size: str | None = "auto",
    model: ModelConfig | ModelOptions | None = None,
    start_from: str | Path | None = None,
    progress: bool = True,
    **train_options: Unpack[TrainOptions],
) -> Plan:
    """What `train` with the same arguments would train (shape, precision, regularisation, schedule), without
    training."""
    _check_names(model, train_options)
    if start_from is not None:
        _check_fine_tune(start_from, None, size, model)
        given = {k: v for k, v in train_options.items() if v is not None}
        return prepare_finetune(start_from, source, corpus, tokenizer, encoding, augment, given, progress).plan
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
    start_from: str | Path | None = None,
    progress: bool = True,
    tensorboard: bool = False,
    sample_every: int | str | None = None,
    report: bool = False,
    size: str | None = "auto",
    model: ModelConfig | ModelOptions | None = None,
    **train_options: Unpack[TrainOptions],
) -> RunResult:
    """Train a model on a file, folder, glob or built-in corpus; or resume the run in folder `resume`.

    `model` holds ModelConfig fields (hidden_size, num_layers, dropout, ...); `train_options`
    are TrainConfig fields (seq_len, batch_size, minutes, steps, ...). What is not given is planned
    for the budget on this machine (`size="auto"`, see `plan` and `genseq.lm.planning`); `size` may also
    name a preset of `planning.SIZES`. `start_from` fine-tunes a trained model (a shipped model's name, a run
    folder or a checkpoint) on the data: its shape and tokenizer are kept, the plan is a fine-tuning plan, and the
    run records it as its parent (`genseq.api.finetune`). Returns the run's result,
    whose `run_dir` holds best.pt, last.pt, config.json and metrics.jsonl.

    `sample_every` N writes a few samples and the validation loss every N steps into `run_dir/samples`
    (`progress_samples`; a new run then evaluates every N steps unless `eval_every` is given), `"eval"` at every
    evaluation (as planned for the budget), and `report` a page of them, `samples/index.html`.

    Under `torchrun` every process calls this; the first one prepares the data and writes the files.
    """
    if tensorboard and importlib.util.find_spec("tensorboard") is None:  # say so before anything is written
        raise ConfigError("--tensorboard needs the tensorboard package: pip install 'genseq[tensorboard]'")
    _check_names(model, train_options)
    here = world()
    progress = progress and here.is_main
    if sample_every is not None:
        sample_every = read_cadence(sample_every)
    if isinstance(sample_every, int) and resume is None and train_options.get("eval_every") is None:
        train_options = {**train_options, "eval_every": sample_every}  # samples come from an evaluation's checkpoint
    if report and sample_every is None:
        raise ConfigError("--report on train shows the samples of --sample-every N; give it as well")
    weights, parent = None, None
    if start_from is not None:
        _check_fine_tune(start_from, resume, size, model)
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
        parent = payload.get("parent")
    elif start_from is not None:
        payload = None
        given = {k: v for k, v in train_options.items() if v is not None}
        tune = here.first_then_others(lambda: prepare_finetune(start_from, source, corpus, tokenizer, encoding,
                                                               augment, given, progress))
        run_plan, prepared, model_config, config = tune.plan, tune.prepared, tune.model_config, tune.train_config
        weights, parent = tune.weights, tune.parent
        run_dir = here.broadcast(_new_run_dir(source, corpus, name) if here.is_main else None)
    else:
        payload = None
        run_plan, prepared, model_config, config = _planned(source, corpus, tokenizer, encoding, augment, size, model,
                                                            train_options, progress)
        run_dir = here.broadcast(_new_run_dir(source, corpus, name) if here.is_main else None)
    meta = {"tokenizer": prepared.tokenizer.to_dict(), "data": prepared.description,
            "prelude": first_document(prepared.val.tokens, prepared.tokenizer.end_of_document)}
    if isinstance(sample_every, int):
        check_cadence(sample_every, config.eval_every)
    if parent is not None:
        meta["parent"] = parent
    trainer = Trainer(model_config, config, prepared.train.tokens, prepared.val.tokens, run_dir, meta, payload)
    if weights is not None:
        trainer.model.load_state_dict(weights)
    if payload is None:  # said once the settings have passed the trainer's checks, so an error stays one line
        say(run_plan.describe(), quiet=not progress)
    if here.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        planned = {"plan": run_plan.to_dict()} if payload is None else \
            {"plan": json.loads((run_dir / "config.json").read_text(encoding="utf-8")).get("plan")} \
            if (run_dir / "config.json").exists() else {}
        write_atomic(run_dir / "config.json", json.dumps(
            {"model": to_dict(model_config), "train": to_dict(config), "data": prepared.description,
             "device": str(trainer.device), "precision": trainer.precision, "processes": here.size, **planned,
             **({"parent": parent} if parent is not None else {})},
            indent=2) + "\n")
    say(f"run {run_dir}: {model_config.num_layers}x{model_config.hidden_size} LSTM, "
        f"{trainer.model.num_parameters():,} parameters, vocab {model_config.vocab_size}, "
        f"{len(prepared.train):,} train / {len(prepared.val):,} validation tokens, "
        f"{trainer.device} {trainer.precision}", quiet=not progress)
    can_plot = [importlib.util.find_spec("matplotlib") is not None]
    board = _tensorboard_writer(run_dir) if tensorboard and here.is_main else None
    sampler = ProgressSamples(run_dir, sample_every, report) if sample_every is not None and here.is_main else None
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
                    plots.loss_curve_png(read_metrics(run_dir), run_dir / "loss.png")
                except GenseqError as err:  # the plot is a convenience: training goes on, once warned
                    say(f"[yellow]warning:[/] {escape(str(err))}; no more loss plots in this run")
                    can_plot[0] = False
            if board is not None:
                for key in ("train_loss", "val_loss", "lr", "tokens_per_s"):
                    if record.get(key) is not None:
                        board.add_scalar(key, record[key], record["step"])
                board.flush()
            if sampler is not None:
                sampler.on_evaluation(record["step"], record["val_loss"])

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
    parent = config.get("parent")
    return {"run": str(folder), "best_val_loss": min(val) if val else None, "size": "{}x{}".format(*shape),
            "data": named["corpus"] or named["source"], "tokenizer": named["tokenizer_kind"],
            "parent": parent.get("model") if isinstance(parent, dict) and isinstance(parent.get("model"), str)
            else None, "checkpoint": None if checkpoint is None else str(checkpoint)}


def list_runs(root: Path = DEFAULT_RUNS) -> list[dict[str, Any]]:
    """Run folders under `root` with their best validation loss, size and data, newest first (see `find_runs`)."""
    return find_runs(root).rows
