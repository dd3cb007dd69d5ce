"""The training plan: the model shape, precision and regularisation a budget buys on this machine.

`--size auto` (the default) times one training step of a few candidate shapes here (cached per
machine and torch version), predicts each one's validation loss from the tokens it would see in
the budget, and takes the lowest. The rule is explained in docs/guide/training.md ("How genseq plans a
run"), the runs it was fitted on in docs/results/; `benchmarks/quality.py --budgets` checks it against a plain
loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from genseq.errors import ConfigError
from genseq.limits import lstm_parameters
from genseq.lm.config import SIZES
from genseq.lm.runtime import choose_precision, native_precisions


@dataclass(frozen=True)
class Shape:
    """What a run's cost per step depends on: the LSTM's size and the batch of windows."""

    num_layers: int
    hidden_size: int
    seq_len: int = 64
    batch_size: int = 64

    @property
    def key(self) -> str:
        return f"{self.num_layers}x{self.hidden_size}/w{self.seq_len}/b{self.batch_size}"

    @property
    def tokens_per_step(self) -> int:
        return self.seq_len * self.batch_size

    def parameters(self, vocab_size: int) -> int:
        """Weights of the LSTM language model of this shape (embedding as wide as the hidden state)."""
        return lstm_parameters(vocab_size, self.hidden_size, self.num_layers, None)


CANDIDATES: tuple[Shape, ...] = (
    Shape(2, 128, 64, 32),
    Shape(2, 256, 64, 64),
    Shape(2, 384, 64, 64),
    Shape(2, 512, 64, 64),
    Shape(2, 768, 64, 64),
    Shape(3, 1024, 64, 64),
)
"""Shapes `--size auto` chooses among, smallest first. Windows of 64 measured best at 10 minutes; batch 32 for
the smallest, whose step is overhead-bound."""

STEP_BUDGET_MAX = Shape(2, 512, 64, 64)
"""With a budget in steps or epochs the time is unbounded, so auto stops at the default size."""

# Predicted validation loss L(N, D) = E + A / N**ALPHA + B / D_eff**BETA (Hoffmann et al. 2022's form),
# N parameters, D_eff the training tokens counted with repetition's diminishing worth (Muennighoff et al.
# 2023, R* = 15.4). A and B were fitted to genseq runs on tinyshakespeare (`benchmarks.quality --sweep`).
# Only differences between shapes matter for the choice, so E, which depends on the corpus,
# is left out.
ALPHA, BETA = 0.34, 0.28
FIT_A, FIT_B = 55.5, 34.3
REPEAT_HALF_LIFE = 15.4


def effective_tokens(tokens: float, unique_tokens: float) -> float:
    """Tokens seen, counting repeated epochs at a decaying worth: at most ~16x the unique tokens."""
    if unique_tokens <= 0 or tokens <= unique_tokens:
        return tokens
    repeats = tokens / unique_tokens - 1
    return unique_tokens * (1 + REPEAT_HALF_LIFE * (1 - math.exp(-repeats / REPEAT_HALF_LIFE)))


def predicted_excess_loss(parameters: float, tokens: float, unique_tokens: float) -> float:
    """The part of the predicted validation loss that depends on the shape and budget (nats/token)."""
    return FIT_A / parameters**ALPHA + FIT_B / max(effective_tokens(tokens, unique_tokens), 1.0) ** BETA


def dropout_for(epochs: float) -> float:
    """Dropout for a run that reads its training split `epochs` times: 0.075 x log2(epochs), in [0, 0.3].

    Under one epoch nothing is seen twice and dropout only slows learning; the more passes, the more a model
    overfits. The slope runs between the anchors measured on tinyshakespeare (docs/results/).
    """
    return round(min(0.3, max(0.0, 0.075 * math.log2(max(epochs, 1.0)))), 2)


WEIGHT_DECAY_MIN, WEIGHT_DECAY_MAX = 0.01, 0.3


def weight_decay_for(epochs: float) -> float:
    """AdamW weight decay for a run that reads its training split `epochs` times: 0.01 up to two epochs,
    then 0.01 x (epochs / 2) ** 2.45, at most 0.3 (reached at 8 epochs): a run that reads its data once or
    twice gains nothing from more; a run of many passes does (the anchors: docs/results/).
    """
    grown = WEIGHT_DECAY_MIN * max(epochs / 2, 1.0) ** 2.45
    return float(f"{min(WEIGHT_DECAY_MAX, grown):.2g}")


def learning_rate_for(hidden_size: int, steps: int) -> float:
    """Peak AdamW rate: 8e-3 x sqrt(384 / hidden) x clip(sqrt(1000 / steps), 1, 4), at most 2e-2: higher for
    narrower models and for runs under 1,000 steps. A short run ends before a small rate has moved the weights
    far; narrower models take larger rates (as muP scales Adam's rate by width). Anchors: docs/results/.
    """
    width = (384 / hidden_size) ** 0.5
    shortness = min(4.0, max(1.0, (1000 / max(steps, 1)) ** 0.5))
    return float(f"{min(2e-2, 8e-3 * width * shortness):.2g}")


WARMUP_SHARE = 0.05
"""Warm-up ends after WARMUP_MAX_STEPS steps or this share of the budget, whichever comes first."""
WARMUP_MAX_STEPS = 100
EVALUATIONS = 10
"""Evaluations (and checkpoints) per run when --eval-every is not given, evenly over the budget."""
EVAL_SHARE = 0.1
"""A time budget spends at most about this share on evaluations: fewer than EVALUATIONS where one takes long
(on a slow CPU ten evaluations would take a third of a 3-minute run)."""


StepTimer = Callable[[Shape, str], float]
"""Seconds per training step of a shape at a precision on this machine."""


# -- the plan ------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """The shape, precision, regularisation, learning rate and schedule a run trains with, and why."""

    num_layers: int
    hidden_size: int
    seq_len: int
    batch_size: int
    precision: str
    dropout: float
    locked_dropout: bool
    """One dropout mask per sequence and window (variational dropout) rather than one per token."""
    weight_decay: float
    learning_rate: float
    steps: int
    """Planned steps: the budget's own, or for --minutes the estimate from the measured step time."""
    warmup_steps: int
    eval_every: int | None
    """Steps between evaluations; None: EVALUATIONS times over the budget (a time budget's steps are estimates)."""
    parameters: int
    tokens: int
    epochs: float
    seconds_per_step: float | None
    chosen_by: str
    """'auto' (shape chosen here), 'given' (every shape setting given), 'partly given', or 'base model' (a
    fine-tune's, `planning_finetune`)."""
    reason: str

    def describe(self) -> str:
        """One line: what trains and why."""
        per = f", {self.seconds_per_step * 1000:.0f} ms/step measured" if self.seconds_per_step else ""
        ratio = self.tokens / max(self.parameters, 1)
        return (f"plan: {self.num_layers}x{self.hidden_size} LSTM, windows of {self.seq_len}, batch {self.batch_size}, "
                f"{self.precision}, ~{self.steps:,} steps ({ratio:.1f} tokens/parameter, {self.epochs:.1f} epochs"
                f"{per}), peak lr {self.learning_rate:g}, warm-up {self.warmup_steps}, dropout {self.dropout:g}"
                f"{' (locked)' if self.locked_dropout and self.dropout else ''}, "
                f"weight decay {self.weight_decay:g}: {self.reason}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def precisions_to_try(precision: str, device: torch.device) -> list[str]:
    """`auto`: every precision this device runs natively, fp32 first (the probe keeps the fastest); else the
    one asked for, checked (bf16 where it is not native is a one-line error)."""
    if precision != "auto":
        return [choose_precision(precision, device)]
    return native_precisions(device)


def _shape_given(size: str | None, model_options: dict[str, Any], train_options: dict[str, Any]) -> dict[str, Any]:
    """The shape fields the caller fixed (None: free); a --size preset fixes layers and width."""
    if size not in (None, "auto", *SIZES):
        raise ConfigError(f"unknown --size {size!r}; use auto or one of {', '.join(SIZES)}")
    layers, hidden = SIZES[size] if size in SIZES else (None, None)
    layers = model_options.get("num_layers", layers)
    hidden = model_options.get("hidden_size", hidden)
    if hidden is not None and layers is None:  # a width alone keeps the usual depth
        layers = STEP_BUDGET_MAX.num_layers
    return {"num_layers": layers, "hidden_size": hidden, "seq_len": train_options.get("seq_len"),
            "batch_size": train_options.get("batch_size")}


def _candidates(given: dict[str, Any], timed: bool, vocab_size: int) -> list[Shape]:
    """CANDIDATES with the given fields put in, duplicates dropped; one shape when every field is given."""
    candidates = list(dict.fromkeys(
        Shape(*(given[k] if given[k] is not None else getattr(c, k)
                for k in ("num_layers", "hidden_size", "seq_len", "batch_size"))) for c in CANDIDATES))
    if not timed:  # steps or epochs: time does not bound the run, so do not grow past the default size
        limit = STEP_BUDGET_MAX.parameters(vocab_size)
        candidates = [c for c in candidates if c.parameters(vocab_size) <= limit] or candidates[:1]
    return candidates[:1] if all(v is not None for v in given.values()) else candidates


def best_shape(candidates: list[Shape], *, minutes: float | None, steps: int | None, epochs: float | None,
                train_tokens: int, vocab_size: int, precisions: list[str],
                step_seconds: StepTimer) -> tuple[Shape, str, float | None, int]:
    """The candidate with the lowest predicted loss for the budget: (shape, precision, s/step, steps)."""

    def budget_steps(shape: Shape, seconds: float | None) -> int:
        options = []
        if steps is not None:
            options.append(steps)
        if epochs is not None:
            options.append(math.ceil(epochs * train_tokens / shape.tokens_per_step))
        if minutes is not None and seconds:
            options.append(max(1, int(minutes * 60 / seconds)))
        return max(1, min(options)) if options else 1

    timed = minutes is not None
    scored: list[tuple[float, Shape, str, float | None, int]] = []
    for shape in candidates:
        if timed:  # auto precision: the fastest this machine runs natively; once one has won twice
            # in a row it is the only one timed for the larger shapes (the probe stays a few seconds)
            winners = [s[2] for s in scored[-2:]]
            tried = [winners[0]] if len(winners) == 2 and winners[0] == winners[1] else precisions
            seconds, precision = min((step_seconds(shape, p), p) for p in tried)
        else:
            seconds, precision = None, precisions[-1]
        n_steps = budget_steps(shape, seconds)
        score = predicted_excess_loss(shape.parameters(vocab_size), n_steps * shape.tokens_per_step, train_tokens)
        scored.append((score, shape, precision, seconds, n_steps))
        best = min(scored, key=lambda s: s[0])
        if timed and best is not scored[-1] and len(scored) >= 2 and best is not scored[-2]:
            break  # two larger shapes in a row predicted worse: the rest, slower still, would be too
    _, shape, precision, seconds, n_steps = min(scored, key=lambda s: s[0])
    return shape, precision, seconds, n_steps


def make_plan(
    *,
    vocab_size: int,
    train_tokens: int,
    model_options: dict[str, Any],
    train_options: dict[str, Any],
    size: str | None,
    device: torch.device,
    step_seconds: StepTimer,
    copies: int = 1,
) -> Plan:
    """The plan for a new run: explicit settings win; the rest is chosen for the budget.

    `model_options` / `train_options` hold only what the caller set (ModelConfig / TrainConfig fields);
    `step_seconds` measures (or, in tests, reports) a shape's step time at a precision. `copies`: the
    augmented copies of each training piece in `train_tokens`; dropout follows the passes over the
    unique tokens (`train_tokens / copies`), as a transposed copy teaches little that is new (on
    bach-chorales, twelve transpositions, a 2x256 model overfit within one pass over the copies). The
    shape is chosen on all of `train_tokens`: the loss fit, made on text, says nothing about copies.
    """
    from genseq.lm.config import TrainConfig

    given = _shape_given(size, model_options, train_options)
    minutes = train_options.get("minutes")
    steps, epochs = train_options.get("steps"), train_options.get("epochs")
    if minutes is None and steps is None and epochs is None:
        minutes = TrainConfig().minutes
    candidates = _candidates(given, minutes is not None, vocab_size)
    shape, precision, seconds, n_steps = best_shape(
        candidates, minutes=minutes, steps=steps, epochs=epochs, train_tokens=train_tokens, vocab_size=vocab_size,
        precisions=precisions_to_try(train_options.get("precision", "auto"), device), step_seconds=step_seconds)

    tokens = n_steps * shape.tokens_per_step
    epochs_seen = tokens / max(train_tokens, 1)
    unique_epochs = epochs_seen * copies
    warmup = train_options.get("warmup_steps")
    if warmup is None:
        warmup = min(WARMUP_MAX_STEPS, max(1, round(WARMUP_SHARE * n_steps)))
    dropout = model_options.get("dropout", dropout_for(unique_epochs))
    locked = model_options.get("locked_dropout", True)
    weight_decay = train_options.get("weight_decay", weight_decay_for(unique_epochs))
    rate = train_options.get("learning_rate") or learning_rate_for(shape.hidden_size, n_steps)
    eval_every = train_options.get("eval_every")
    if eval_every is None and minutes is None:
        eval_every = max(1, math.ceil(n_steps / EVALUATIONS))

    all_given = all(v is not None for v in given.values())
    chosen_by = "given" if all_given else "auto" if not any(v is not None for v in given.values()) else "partly given"
    if len(candidates) == 1:
        reason = "the shape given" if all_given else "the only candidate left by the settings given"
    else:
        budget = f"{minutes:g} minute{'' if minutes == 1 else 's'}" if minutes is not None else f"{n_steps:,} steps"
        reason = (f"of {len(candidates)} candidate shapes, the lowest predicted loss for {budget} on "
                  f"{train_tokens:,} training tokens")
    if copies > 1:
        reason += (f" ({copies} augmented copies of {round(train_tokens / copies):,}: {unique_epochs:.1f} passes over "
                   "those)")
    given_regularisation = [name for name, options in (("dropout", model_options), ("weight_decay", train_options))
                            if name in options]
    if given_regularisation:
        reason += f"; {' and '.join(given_regularisation).replace('_', ' ')} given"
    return Plan(shape.num_layers, shape.hidden_size, shape.seq_len, shape.batch_size, precision, dropout, locked,
                weight_decay, rate, n_steps, warmup, eval_every, shape.parameters(vocab_size), tokens,
                round(epochs_seen, 3), seconds, chosen_by, reason)


__all__ = ["CANDIDATES", "SIZES", "Plan", "Shape", "best_shape", "dropout_for", "effective_tokens", "make_plan",
           "learning_rate_for", "predicted_excess_loss", "weight_decay_for"]
