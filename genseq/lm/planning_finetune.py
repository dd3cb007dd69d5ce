"""The plan for fine-tuning: a trained model's shape on a user's small data, at a gentler rate.

A fine-tune keeps the base model's shape (and its windows and batch, the batch smaller on little data), so only the
schedule and the regularisation are planned: the peak rate is FINETUNE_RATE_SHARE of the rate the base model was
trained at (its weights are already good; a full rate would wash them out), the warm-up is short (the optimizer's
moments start afresh, but the weights need no search), dropout and weight decay follow the passes over the user's
data as in a new run but never fall below the base model's dropout, and the run stops early once the validation
loss on the user's own held-out pieces has not improved for FINETUNE_PATIENCE evaluations (best.pt keeps the best).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch

from genseq.lm.config import ModelConfig, TrainConfig
from genseq.lm.planning import (
    EVALUATIONS,
    Plan,
    Shape,
    StepTimer,
    best_shape,
    dropout_for,
    precisions_to_try,
    weight_decay_for,
)

FINETUNE_RATE_SHARE = 0.3
"""The fine-tune's peak rate as a share of the base model's own."""
FINETUNE_WARMUP_SHARE, FINETUNE_WARMUP_MAX_STEPS = 0.02, 20
"""Warm-up ends after FINETUNE_WARMUP_MAX_STEPS steps or this share of the budget, whichever comes first."""
FINETUNE_MIN_WINDOWS = 4
"""Windows each stream reads in a pass at least: on a few tunes the batch shrinks (fewer, longer streams) rather
than the run refusing the data."""
FINETUNE_PATIENCE = 3
"""Evaluations in a row without a better validation loss that end a fine-tune."""


def make_finetune_plan(*, base_model: ModelConfig, base_train: dict[str, Any], vocab_size: int, train_tokens: int,
                       train_options: dict[str, Any], device: torch.device, step_seconds: StepTimer) -> Plan:
    """The plan to fine-tune a model of `base_model`'s shape, trained with `base_train` (its TrainConfig as saved),
    on `train_tokens` of new data; `train_options` holds only what the caller set, which wins."""
    seq_len = train_options.get("seq_len") or base_train.get("seq_len") or Shape.seq_len
    batch_size = train_options.get("batch_size") or min(
        base_train.get("batch_size") or Shape.batch_size,
        max(1, train_tokens // ((FINETUNE_MIN_WINDOWS + 1) * seq_len + 1)))
    shape = Shape(base_model.num_layers, base_model.hidden_size, seq_len, batch_size)
    minutes = train_options.get("minutes")
    steps, epochs = train_options.get("steps"), train_options.get("epochs")
    if minutes is None and steps is None and epochs is None:
        minutes = TrainConfig().minutes
    _, precision, seconds, n_steps = best_shape(
        [shape], minutes=minutes, steps=steps, epochs=epochs, train_tokens=train_tokens, vocab_size=vocab_size,
        precisions=precisions_to_try(train_options.get("precision", "auto"), device), step_seconds=step_seconds)
    tokens = n_steps * shape.tokens_per_step
    epochs_seen = tokens / max(train_tokens, 1)
    base_rate = base_train.get("learning_rate") or TrainConfig.learning_rate
    rate = train_options.get("learning_rate") or float(f"{FINETUNE_RATE_SHARE * base_rate:.2g}")
    warmup = train_options.get("warmup_steps")
    if warmup is None:
        warmup = min(FINETUNE_WARMUP_MAX_STEPS, max(1, round(FINETUNE_WARMUP_SHARE * n_steps)))
    eval_every = train_options.get("eval_every")
    if eval_every is None and minutes is None:
        eval_every = max(1, math.ceil(n_steps / EVALUATIONS))
    dropout = max(base_model.dropout, dropout_for(epochs_seen))
    weight_decay = train_options.get("weight_decay", weight_decay_for(epochs_seen))
    reason = (f"fine-tuning: the base model's shape, {FINETUNE_RATE_SHARE:g} of its peak rate {base_rate:g}, "
              f"stopping after {train_options.get('patience') or FINETUNE_PATIENCE} evaluations without a better "
              "validation loss")
    parameters = dataclasses.replace(base_model, vocab_size=vocab_size).parameters()
    return Plan(shape.num_layers, shape.hidden_size, shape.seq_len, shape.batch_size, precision, dropout,
                base_model.locked_dropout, weight_decay, rate, n_steps, warmup, eval_every, parameters, tokens,
                round(epochs_seen, 3), seconds, "base model", reason)


__all__ = ["FINETUNE_PATIENCE", "FINETUNE_RATE_SHARE", "make_finetune_plan"]
