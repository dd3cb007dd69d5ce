"""Settings as dataclasses, validated when built. The CLI and TOML files only fill them in."""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from typing import Any, TypedDict

from genseq.errors import ConfigError
from genseq.limits import check_memory, check_seed, lstm_parameters, sampling_bytes


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass
class ModelConfig:
    """Shape of the stacked LSTM language model."""

    vocab_size: int
    hidden_size: int = 512
    num_layers: int = 2
    embedding_size: int | None = None
    """Defaults to hidden_size."""
    dropout: float = 0.3
    """Applied to the embedding output, between LSTM layers and before the output head."""
    locked_dropout: bool = False
    """One dropout mask per sequence and window, the same at every time step (variational dropout), instead of
    one per token. False here so that runs saved before it resume unchanged; a planned run takes True."""
    tie_weights: bool = False

    def __post_init__(self) -> None:
        if self.embedding_size is None:
            self.embedding_size = self.hidden_size
        _check(self.vocab_size > 3, f"vocab_size {self.vocab_size} is too small; the corpus needs some symbols")
        _check(self.hidden_size > 0, f"--hidden must be positive, got {self.hidden_size}")
        _check(self.num_layers > 0, f"--layers must be positive, got {self.num_layers}")
        _check(0 <= self.dropout < 1, f"--dropout must lie in [0, 1), got {self.dropout}")
        _check(
            not self.tie_weights or self.embedding_size == self.hidden_size,
            "--tie-weights needs the embedding size to equal the hidden size",
        )
        check_memory(4 * self.parameters(), f"a {self.num_layers}x{self.hidden_size} model",
                     "choose a smaller --hidden or --layers")

    def parameters(self) -> int:
        """Weights of a model of this shape (counted, not allocated)."""
        return lstm_parameters(self.vocab_size, self.hidden_size, self.num_layers, self.embedding_size,
                               self.tie_weights)


@dataclass
class TrainConfig:
    """How to train: data shape, optimizer, schedule, budget, evaluation and where to write."""

    seq_len: int = 64
    batch_size: int = 64
    learning_rate: float = 2e-3
    min_lr_ratio: float = 0.05
    """The cosine schedule ends at learning_rate * min_lr_ratio."""
    warmup_steps: int | None = None
    """Linear warm-up steps; None: 100 steps or 5% of the budget, whichever ends first (`training.learning_rate`)."""
    weight_decay: float = 0.01
    """A planned run (`api.train`) takes `planning.weight_decay_for(epochs)` instead, unless given."""
    grad_clip: float = 5.0
    steps: int | None = None
    epochs: float | None = None
    minutes: float | None = None
    """Budget: the first one set ends the run; with none set, 10 minutes."""
    eval_every: int | None = None
    """Steps between evaluations and checkpoints; None: 10 times, evenly over the budget."""
    eval_tokens: int = 262_144
    """Validation tokens read per evaluation (the first ones of the held-out split, the same each time)."""
    patience: int | None = None
    """Early stopping: the run ends after this many evaluations in a row without a better validation loss (best.pt
    keeps the best); None: it runs its whole budget. A fine-tuning plan sets it (`planning_finetune`)."""
    val_fraction: float = 0.1
    seed: int = 1337
    device: str = "auto"
    precision: str = "auto"
    threads: int | None = None

    def __post_init__(self) -> None:
        _check(self.seq_len > 0, f"--seq-len must be positive, got {self.seq_len}")
        _check(self.batch_size > 0, f"--batch-size must be positive, got {self.batch_size}")
        _check(0 < self.learning_rate < math.inf, f"--lr must be a positive number, got {self.learning_rate}")
        _check(0 <= self.min_lr_ratio <= 1, f"min_lr_ratio must lie in [0, 1], got {self.min_lr_ratio}")
        _check(self.warmup_steps is None or self.warmup_steps >= 0,
               f"--warmup-steps must be >= 0, got {self.warmup_steps}")
        _check(self.grad_clip > 0, f"--clip must be positive, got {self.grad_clip}")
        _check(self.patience is None or self.patience > 0, f"--patience must be positive, got {self.patience}")
        _check(self.eval_every is None or self.eval_every > 0, f"--eval-every must be positive, got {self.eval_every}")
        _check(0 < self.val_fraction < 1, f"--val-fraction must lie strictly between 0 and 1, got {self.val_fraction}")
        for name in ("steps", "epochs", "minutes"):
            value = getattr(self, name)
            _check(value is None or value > 0, f"--{name} must be positive, got {value}")
        check_seed(self.seed)
        if self.steps is None and self.epochs is None and self.minutes is None:
            self.minutes = 10.0


SIZES: dict[str, tuple[int, int]] = {"tiny": (1, 128), "small": (2, 256), "medium": (2, 512), "large": (3, 768)}
"""Explicit --size presets: (layers, hidden). `auto` chooses among `planning.CANDIDATES` instead (here, without
torch, so that `genseq --help` can name them at once)."""

STEP_PRECISIONS = ("fp32", "bf16", "int8")
"""Precisions of the CPU sampler's LSTM step (`fastpath.LSTMStep`); `SampleConfig.precision` also takes auto."""


@dataclass
class SampleConfig:
    """How to draw samples from a trained model."""

    length: int = 1000
    temperature: float | None = None
    """Divides the logits before the draw; 0 picks the most likely token every step (greedy). None: not chosen,
    the model's own distribution (`effective_temperature` 1), as top_k and top_p None leave it whole."""
    top_k: int | None = None
    top_p: float | None = None
    num_samples: int = 1
    seed: int | None = None
    stop_at_end: bool = True
    """Stop a sample at the end-of-document token."""
    precision: str = "auto"
    """Of the CPU fast path's LSTM products: fp32, bf16, int8 (weights only), or auto (see
    `sampling.step_precision`). fp32 gives exactly the plain path's tokens for a seed; bf16 and int8
    are faster and move the shipped models' validation loss by under 1e-3 nats/token (docs/guide/sampling.md)."""
    beam_size: int = 1
    """1 draws at random; N > 1 searches deterministically for the N most likely continuations
    (`sampling.beam_search`), under the model's own distribution and in the model's own precision."""
    voice_leading: bool = False
    """Voices models: never draw parallel fifths or octaves, crossed voices or notes outside the voices'
    ranges (`voice_leading.VoiceLeading`)."""
    full_bars: bool = False
    """ABC models: never close a bar short of its meter or write past it (`bar_lengths.FullBars`)."""

    def __post_init__(self) -> None:
        _check(self.length > 0, f"--length must be positive, got {self.length}")
        _check(
            self.temperature is None or (math.isfinite(self.temperature) and self.temperature >= 0),
            f"--temperature must be a number >= 0 (0 is greedy), got {self.temperature}",
        )
        _check(self.top_k is None or self.top_k > 0, f"--top-k must be positive, got {self.top_k}")
        _check(
            self.top_p is None or (0 < self.top_p <= 1),
            f"--top-p must lie in (0, 1], got {self.top_p}",
        )
        _check(self.num_samples > 0, f"--num-samples must be positive, got {self.num_samples}")
        check_seed(self.seed)
        check_memory(sampling_bytes(self.length, self.num_samples),
                     f"{self.num_samples:,} samples of {self.length:,} tokens", "ask for fewer or shorter samples")
        _check(self.precision in ("auto", *STEP_PRECISIONS),
               f"--precision must be auto, fp32, bf16 or int8, got {self.precision!r}")
        _check(self.beam_size > 0, f"--beam-size must be positive (1 samples at random), got {self.beam_size}")
        if self.beam_size > 1:
            self._check_beam()

    @property
    def effective_temperature(self) -> float:
        """The temperature the sampler applies: the one chosen, else 1 (the logits as the model gives them)."""
        return 1.0 if self.temperature is None else self.temperature

    def _check_beam(self) -> None:
        """Beam search ranks continuations by the model's own probabilities: options that reshape or draw from
        that distribution (any temperature given, 1 included), or that ask for more results than beams, have no
        meaning beside it."""
        beam = f"--beam-size {self.beam_size}"
        reshaping = {"--temperature": self.temperature, "--top-k": self.top_k, "--top-p": self.top_p}
        for option, value in reshaping.items():
            _check(value is None, f"{beam} with {option} {value}: beam search ranks by the model's own "
                                  f"probabilities; drop {option} or use --beam-size 1 to sample")
        _check(self.num_samples <= self.beam_size,
               f"{beam} with --num-samples {self.num_samples}: beam search returns at most its {self.beam_size} "
               "best continuations; raise --beam-size or lower --num-samples")
        _check(self.precision in ("auto", "fp32"), f"{beam} with --precision {self.precision}: beam search runs "
                                                   "in the model's fp32; drop --precision or use --beam-size 1")


class SampleOptions(TypedDict, total=False):
    """`SampleConfig`'s fields as keyword arguments (`TrainedModel.sample(..., temperature=0.8)`), typed for IDEs
    and checkers; None, or a key left out, is "not chosen": the model's own default, then SampleConfig's."""

    length: int | None
    temperature: float | None
    top_k: int | None
    top_p: float | None
    num_samples: int | None
    seed: int | None
    stop_at_end: bool | None
    precision: str | None
    beam_size: int | None
    voice_leading: bool | None
    full_bars: bool | None


class ModelOptions(TypedDict, total=False):
    """`ModelConfig`'s fields a caller may choose (`genseq.train(model={...})`); the rest are planned."""

    hidden_size: int
    num_layers: int
    embedding_size: int | None
    dropout: float
    locked_dropout: bool
    tie_weights: bool


class TrainOptions(TypedDict, total=False):
    """`TrainConfig`'s fields as keyword arguments (`genseq.train(..., minutes=5)`); None: not chosen (planned or
    TrainConfig's default)."""

    seq_len: int | None
    batch_size: int | None
    learning_rate: float | None
    min_lr_ratio: float | None
    warmup_steps: int | None
    weight_decay: float | None
    grad_clip: float | None
    steps: int | None
    epochs: float | None
    minutes: float | None
    eval_every: int | None
    eval_tokens: int | None
    patience: int | None
    val_fraction: float | None
    seed: int | None
    device: str | None
    precision: str | None
    threads: int | None


def check_names(options: Any, cls: type, what: str) -> None:
    """A ConfigError naming the first key of `options` that is no field of the dataclass `cls`, and the field it
    was probably meant to be: a typo fails at once, in one line, not as a TypeError deep inside."""
    fields = [f.name for f in dataclasses.fields(cls)]
    for name in options:
        if name not in fields:
            close = difflib.get_close_matches(name, fields, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"use one of {', '.join(fields)}"
            raise ConfigError(f"unknown {what} {name!r}; {hint}")


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Build `cls` from saved data, ignoring keys an older or newer version does not know."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


__all__ = ["STEP_PRECISIONS", "ModelConfig", "ModelOptions", "SampleConfig", "SampleOptions", "TrainConfig",
           "TrainOptions", "check_names", "from_dict", "to_dict"]
