"""Fine-tuning (`genseq train DATA --from MODEL`): a new run that starts from a trained model's weights.

The base model is a shipped model's name, a run folder or a checkpoint, read with the same checks as `sample`.
The run keeps its shape and tokenizer; symbols of the new data that a character vocabulary lacks are added
(`Tokenizer.extended`) and their rows grown so they take no probability yet (`genseq.lm.grow`); a fixed
vocabulary (MIDI events) encodes what it lacks as `unknown`, as training always does. The plan is a
fine-tuning plan (`genseq.lm.planning_finetune`), and the run records its parent.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from genseq.api.data import PreparedData, data_tokenizer, prepare_data
from genseq.corpora.sources import builtin_corpora, guess_tokenizer
from genseq.errors import CheckpointError, InputError
from genseq.files import cache_dir
from genseq.lm.checkpoint import load_checkpoint, resolve_checkpoint
from genseq.lm.config import ModelConfig, TrainConfig, from_dict
from genseq.lm.grow import fit_new_bias, grow_vocabulary
from genseq.lm.model import LSTMLanguageModel
from genseq.lm.planning import Plan
from genseq.lm.planning_finetune import FINETUNE_PATIENCE, make_finetune_plan
from genseq.lm.probe import StepProbe
from genseq.lm.runtime import choose_device, set_threads
from genseq.tokenizers import Tokenizer, reads_midi, tokenizer_from_dict


@dataclass
class FineTune:
    """What a fine-tuning run starts from: its plan, data, settings, the base weights grown to its vocabulary, and
    the parent it records."""

    plan: Plan
    prepared: PreparedData
    model_config: ModelConfig
    train_config: TrainConfig
    weights: dict[str, torch.Tensor]
    parent: dict[str, Any]


def _kind_name(kind: str) -> str:
    return "MIDI" if reads_midi(kind) else {"abc": "ABC", "char": "text"}.get(kind, kind)


def data_kind(base: str, base_kind: str, source: str | None, corpus: str | None, tokenizer: str | None) -> str:
    """The base model's tokenizer kind, once the data is of that kind: a one-line InputError naming both if not."""
    if tokenizer is not None:
        kind = tokenizer
    elif corpus is not None:
        kind = builtin_corpora().get(corpus, {}).get("tokenizer", base_kind)
    else:
        kind = guess_tokenizer(str(source))
    if kind == base_kind or (reads_midi(kind) and reads_midi(base_kind)):
        return base_kind
    raise InputError(f"{source or corpus} is {_kind_name(kind)} data ({kind} tokenizer) but {base} is a "
                     f"{_kind_name(base_kind)} model ({base_kind} tokenizer); fine-tune it on {_kind_name(base_kind)} "
                     "files, or train without --from")


def prepare_finetune(start_from: str | Path, source: str | None, corpus: str | None, tokenizer: str | None,
                     encoding: str, augment: str | None, train_options: dict[str, Any], progress: bool) -> FineTune:
    """The base model read and checked, the data prepared with its tokenizer extended, the plan, the grown weights."""
    checkpoint = resolve_checkpoint(start_from)
    payload = load_checkpoint(checkpoint)
    if "tokenizer" not in payload:
        raise CheckpointError(f"{checkpoint} holds no tokenizer (a Trainer's own checkpoint?); fine-tune a model "
                              "written by `genseq train`")
    base_tokenizer = tokenizer_from_dict(payload["tokenizer"])
    base_config = from_dict(ModelConfig, payload["model_config"])
    kind = data_kind(str(start_from), base_tokenizer.kind, source, corpus, tokenizer)
    config = TrainConfig(**train_options)  # checks the settings before any data is read
    joined = base_tokenizer.extended(data_tokenizer(source, corpus, kind, encoding))
    prepared = prepare_data(source, corpus=corpus, tokenizer=joined, encoding=encoding, augment=augment,
                            val_fraction=config.val_fraction, seed=config.seed, progress=progress)
    device = choose_device(config.device)
    set_threads(config.threads)
    vocab_size = prepared.tokenizer.vocab_size
    plan = make_finetune_plan(base_model=base_config, base_train=payload.get("train_config") or {},
                              vocab_size=vocab_size, train_tokens=len(prepared.train), train_options=train_options,
                              device=device, step_seconds=StepProbe(device, torch.get_num_threads(), cache_dir()))
    model_config = dataclasses.replace(base_config, vocab_size=vocab_size, dropout=plan.dropout)
    config = dataclasses.replace(config, seq_len=plan.seq_len, batch_size=plan.batch_size, precision=plan.precision,
                                 learning_rate=plan.learning_rate, weight_decay=plan.weight_decay,
                                 warmup_steps=plan.warmup_steps, eval_every=plan.eval_every,
                                 patience=config.patience or FINETUNE_PATIENCE)
    kept = _kept_ids(base_tokenizer, prepared.tokenizer)
    grown = LSTMLanguageModel(model_config)
    grown.load_state_dict(grow_vocabulary(payload["model"], kept, tied=base_config.tie_weights))
    fit_new_bias(grown, torch.tensor([old is None for old in kept]), prepared.train.tokens)
    weights = grown.state_dict()
    added = vocab_size - base_tokenizer.vocab_size
    parent = {"model": str(start_from), "checkpoint": str(checkpoint),
              "step": (payload.get("progress") or {}).get("step"), "added_symbols": added}
    return FineTune(plan, prepared, model_config, config, weights, parent)


def _kept_ids(base: Tokenizer, joined: Tokenizer) -> list[int | None]:
    """For each id of `joined`, the id of the same symbol in `base`, or None for a symbol new to it."""
    old = {base.token_name(i): i for i in range(base.vocab_size)}
    return [old.get(joined.token_name(i)) for i in range(joined.vocab_size)]


__all__ = ["FineTune", "data_kind", "prepare_finetune"]
