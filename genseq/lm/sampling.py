"""Decoding strategies over the model's one-step API; the hidden state is carried, never recomputed."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch

from genseq.errors import ConfigError
from genseq.lm.config import SampleConfig
from genseq.lm.fastpath import LSTMStep, TokenSelector, int8_available
from genseq.lm.model import LSTMLanguageModel, State
from genseq.lm.runtime import cpu_supports_bf16, make_generator

INT8_STEP_MAX_BATCH = 2
"""Up to this many samples at once, `auto` on a CPU with native bf16 runs the fast step with int8 weights: at
batch 1 the step is bound by reading the weights and by per-call overhead, and int8 measured 1.26x faster than
bf16 (1.18x at 2, even at 4); with more rows the step turns compute-bound and int8's weight-only kernel falls
behind (0.73x bf16 at 8, 0.5x at 64). Without native bf16, fbgemm's int8 beat fp32 at every batch measured
(benchmarks.sample_speed), so `auto` takes it whatever the batch."""


def step_precision(precision: str, batch_size: int) -> str:
    """The fast step's precision for a `SampleConfig.precision`. `auto`: where the CPU has native bf16
    (AVX512-BF16 or AMX), int8 weights for a few samples and bf16 for many; elsewhere int8 through fbgemm
    where PyTorch has it, else fp32."""
    if precision == "bf16" and not cpu_supports_bf16():
        raise ConfigError("--precision bf16: this CPU has no native bf16 (AVX512-BF16 or AMX), where it runs "
                          "emulated and many times slower; use --precision int8, fp32 or auto")
    if precision == "int8" and not int8_available():
        raise ConfigError(f"--precision int8 needs PyTorch's int8 kernels (torch {torch.__version__} here runs "
                          "neither fbgemm's nor the weight-only one); use --precision fp32 or auto")
    if precision != "auto":
        return precision
    if not cpu_supports_bf16():
        return "int8" if int8_available() else "fp32"
    return "int8" if batch_size <= INT8_STEP_MAX_BATCH and int8_available() else "bf16"


class TokenRule(Protocol):
    """Which tokens each sample may draw next, followed as it grows (such as `voice_leading.VoiceLeading`)."""

    def start(self, context: Sequence[int], batch: int) -> None:
        """Read the context every sample starts from, for `batch` samples."""

    def select(self, rows: torch.Tensor) -> None:
        """Keep the samples at `rows`, in that order."""

    def advance(self, tokens: torch.Tensor) -> None:
        """Take each sample's new token [batch]."""

    def mask(self, logits: torch.Tensor) -> None:
        """Set the next-token logits [batch, vocab] of forbidden tokens to -inf, in place."""


class TuneRule:
    """The reading half of a character rule for ABC models: follows each sample's tune, one character at a time,
    in a `new_tune()` object with `add(char)`, from the context's start and from each end-of-document token.
    Subclasses set `end` (the end-of-document token), `char_of` (token -> text) and `new_tune`, and `mask`."""

    end: int
    char_of: dict[int, str]
    new_tune: Callable[[], Any]

    def start(self, context: Sequence[int], batch: int) -> None:
        self.tunes = [self.new_tune()]
        for token in context:
            self._take(0, token)
        self.select(torch.zeros(batch, dtype=torch.long))

    def select(self, rows: torch.Tensor) -> None:
        self.tunes = [copy.deepcopy(self.tunes[row]) for row in rows.tolist()]

    def advance(self, tokens: torch.Tensor) -> None:
        """Take each sample's new token [batch]."""
        for row, token in enumerate(tokens.tolist()):
            self._take(row, token)

    def _take(self, row: int, token: int) -> None:
        if token == self.end:
            self.tunes[row] = self.new_tune()
        else:
            for char in self.char_of[token]:
                self.tunes[row].add(char)


class Rules:
    """Several rules as one: each masks in turn (a later one may overrule an earlier), all follow every token."""

    def __init__(self, *rules: TokenRule | None):
        self.rules = [rule for rule in rules if rule is not None]

    def start(self, context: Sequence[int], batch: int) -> None:
        for rule in self.rules:
            rule.start(context, batch)

    def select(self, rows: torch.Tensor) -> None:
        for rule in self.rules:
            rule.select(rows)

    def advance(self, tokens: torch.Tensor) -> None:
        for rule in self.rules:
            rule.advance(tokens)

    def mask(self, logits: torch.Tensor) -> None:
        for rule in self.rules:
            rule.mask(logits)


class StopSampling(Exception):
    """Raised by an `on_step` callback to end sampling now: the samples keep every token drawn so far."""


def next_token_probs(logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """Probabilities [batch, vocab] after temperature (> 0: greedy decoding is `greedy`), top-k and top-p
    (nucleus) filtering. Top-p keeps the smallest set of most likely tokens whose mass reaches `top_p` (always at
    least one token).
    """
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if top_p is not None and top_p < 1:
        sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
        mass_before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
        sorted_probs = sorted_probs.masked_fill(mass_before >= top_p, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
        probs = probs / probs.sum(-1, keepdim=True)
    return probs


def greedy(logits: torch.Tensor) -> torch.Tensor:
    """The most likely token of each row [batch], on the CPU: temperature 0, on either path, draws nothing."""
    return logits.argmax(-1).cpu()


def draw(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One token per row [batch] by inverse CDF on one uniform per row (what the fast path does in place)."""
    cdf = torch.cumsum(probs, -1)
    uniform = torch.rand((probs.shape[0], 1), generator=generator) * cdf[:, -1:]
    return torch.searchsorted(cdf, uniform, right=True).clamp_(max=probs.shape[-1] - 1)[:, 0]


@torch.inference_mode()
def generate(
    model: LSTMLanguageModel,
    primer: Sequence[int],
    config: SampleConfig,
    end_token: int,
    on_step: Callable[[torch.Tensor], None] | None = None,
    fast: bool | None = None,
    prelude: Sequence[int] = (),
    rule: TokenRule | None = None,
) -> list[list[int]]:
    """`config.num_samples` continuations of `primer`, drawn in one batch.

    The model first reads `prelude` (a document ending in `end_token`, see `data.first_document`;
    default: `end_token` alone) and then the primer, once for all samples; every new token then
    costs one step. A
    sample ends at `end_token` (when `config.stop_at_end`) or after `config.length` new tokens.
    `on_step` sees each step's tokens [batch] as they are drawn (for streaming to a terminal; the
    tensor is reused next step, so copy what must be kept); it may raise `StopSampling` to end here.
    `fast` (default: when the model is on the CPU) steps with `fastpath.LSTMStep` / `TokenSelector`
    instead of `model.step` / `next_token_probs`, in `config.precision`; both paths give the same
    tokens for the same seed when that precision is fp32 (temperature 0 is `greedy` on both). `rule`
    masks each step's logits before the draw, so temperature, top-k and top-p act on the tokens it allows.
    With `config.beam_size` > 1 this is `beam_search` instead (which ignores `fast` and the seed).
    """
    if config.beam_size > 1:
        return beam_search(model, primer, config, end_token, on_step, prelude, rule)
    model.eval()
    device = model.head.weight.device
    generator = make_generator(config.seed)
    batch = config.num_samples
    logits, state = _read_context(model, primer, end_token, prelude)  # one row: every sample starts from it
    logits = logits.expand(batch, -1).clone()
    state = tuple(t.expand(-1, batch, -1).contiguous() for t in state)
    if config.stop_at_end:  # a sample holds at least one new token, never an immediate end of document
        logits[:, end_token] = float("-inf")
    if rule:
        rule.start(_context(primer, end_token, prelude), batch)
    if fast is None:
        fast = device.type == "cpu"
    if fast:
        step = LSTMStep(model, batch, step_precision(config.precision, batch))
        step.load_state(state)
    select = _selector(config, fast, batch, logits.shape[-1], generator)
    samples = torch.empty(config.length, batch, dtype=torch.long)
    columns = samples.unbind(0)  # views made once: indexing a tensor each step costs as much as a small op
    finished, is_end = torch.zeros(batch, dtype=torch.bool), torch.empty(batch, dtype=torch.bool)
    steps = 0
    for steps in range(1, config.length + 1):
        if rule:
            rule.mask(logits)
        token = select(logits)
        if config.stop_at_end and batch > 1:
            token.masked_fill_(finished, end_token)
        if rule:
            rule.advance(token)
        columns[steps - 1].copy_(token)
        if on_step:
            try:
                on_step(token)
            except StopSampling:
                break
        if config.stop_at_end:
            finished.logical_or_(torch.eq(token, end_token, out=is_end))
            if finished.all():
                break
        if fast:
            logits = step(token)
        else:
            logits, state = model.step(token.to(device), state)
    return [_until_end(row, end_token if config.stop_at_end else None) for row in samples[:steps].T.tolist()]


def _selector(config: SampleConfig, fast: bool, batch: int, vocab_size: int,
              generator: torch.Generator) -> Callable[[torch.Tensor], torch.Tensor]:
    """How each step's token [batch] is chosen from its logits: `greedy` at temperature 0 on both paths; else the
    fast path's `TokenSelector`, or `next_token_probs` and `draw` (the same tokens for the same seed)."""
    temperature = config.effective_temperature
    if temperature == 0:
        return greedy
    if fast:
        return TokenSelector(batch, vocab_size, temperature, config.top_k, config.top_p, generator)
    return lambda logits: draw(next_token_probs(logits, temperature, config.top_k, config.top_p).cpu(), generator)


def _context(primer: Sequence[int], end_token: int, prelude: Sequence[int]) -> list[int]:
    """What the model reads before the first new token: the prelude (default: `end_token` alone), then the primer."""
    return [*(prelude or [end_token]), *primer]


def _read_context(model: LSTMLanguageModel, primer: Sequence[int], end_token: int,
                  prelude: Sequence[int]) -> tuple[torch.Tensor, State]:
    """The next-token logits [1, vocab] and the state after reading the context once."""
    logits, state = model(torch.tensor([_context(primer, end_token, prelude)], device=model.head.weight.device))
    return logits[:, -1], state


@torch.inference_mode()
def beam_search(
    model: LSTMLanguageModel,
    primer: Sequence[int],
    config: SampleConfig,
    end_token: int,
    on_step: Callable[[torch.Tensor], None] | None = None,
    prelude: Sequence[int] = (),
    rule: TokenRule | None = None,
) -> list[list[int]]:
    """The `config.num_samples` most likely continuations of `primer` that `config.beam_size` beams find, best first.

    The beams advance one token a step together, so they are only ever compared at equal length: each step
    extends every live beam by every token and the `beam_size` extensions with the highest total log-probability
    survive. With `config.stop_at_end` a survivor that chose `end_token` is a complete piece (never at the first
    step, as in `generate`) and leaves the beam, which narrows by one; the search ends when no beam is live or
    after `config.length` tokens, where the live beams count as cut there. Complete pieces rank first, by mean
    log-probability per token (the end counted) since their lengths differ; beams cut at `config.length` fill
    the rest, by total: a piece that ends is what `stop_at_end` asks for, and a looping beam, cut, would outrank
    most complete pieces per token.
    The beams run as one batch through `model.step`, their (h, c) reordered to follow the survivors. `on_step`
    sees the survivors' newest tokens each step (a later step may drop them: count steps, do not stream them);
    `StopSampling` ends the search with what it holds. `rule` masks every beam's logits, so only the
    continuations it allows are searched.
    """
    model.eval()
    logits, state = _read_context(model, primer, end_token, prelude)
    if rule:
        rule.start(_context(primer, end_token, prelude), 1)
    scores = torch.zeros(1, device=logits.device)  # total log-probability of each live beam
    beams = torch.empty(1, 0, dtype=torch.long, device=logits.device)
    complete: list[tuple[float, list[int]]] = []  # (mean log-probability per token, ids) of each ended piece
    for steps in range(1, config.length + 1):
        if rule:
            rule.mask(logits)
        totals = scores[:, None] + torch.log_softmax(logits.float(), -1)
        if config.stop_at_end and steps == 1:
            totals[:, end_token] = float("-inf")
        width = min(config.beam_size - len(complete), int(torch.isfinite(totals).sum()))
        scores, flat = torch.topk(totals.flatten(), width)  # best first
        rows, tokens = flat // totals.shape[1], flat % totals.shape[1]
        beams = torch.cat([beams[rows], tokens[:, None]], 1)
        chosen = tokens
        if config.stop_at_end:
            ended = tokens == end_token
            complete += [(total / steps, ids) for total, ids in zip(scores[ended].tolist(), beams[ended, :-1].tolist())]
            live = ~ended
            scores, rows, tokens, beams = scores[live], rows[live], tokens[live], beams[live]
        if on_step:
            try:
                on_step(chosen)
            except StopSampling:
                break
        if not tokens.numel():
            break
        if rule:
            rule.select(rows)
            rule.advance(tokens)
        logits, state = model.step(tokens, (state[0][:, rows], state[1][:, rows]))
    complete.sort(key=lambda piece: -piece[0])
    return ([ids for _, ids in complete] + beams.tolist())[: config.num_samples]


@torch.inference_mode()
def log_probability(model: LSTMLanguageModel, primer: Sequence[int], continuation: Sequence[int], end_token: int,
                    prelude: Sequence[int] = ()) -> float:
    """Total log-probability (nats) the model gives `continuation` after the prelude and `primer`, read in one
    teacher-forced pass: what beam search maximises, so decoders can be compared by it."""
    context = _context(primer, end_token, prelude)
    ids = torch.tensor([*context, *continuation], device=model.head.weight.device)
    model.eval()
    logits, _ = model(ids[None, :-1])
    log_probs = torch.log_softmax(logits[0, len(context) - 1 :].float(), -1)
    return log_probs.gather(1, ids[len(context) :, None]).sum().item()


@torch.inference_mode()
def token_log_probs(model: torch.nn.Module, context: Sequence[int], rows: Sequence[Sequence[int]]) -> torch.Tensor:
    """The log-probability [rows, longest row] of each row's every token after `context` (0 past a row's end), in one
    teacher-forced pass: the context is read once for all rows, which then run as one batch (padded at the end,
    which no earlier position sees). `model` is anything called as `model(ids, state) -> (logits, state)`."""
    model.eval()
    longest = max(len(row) for row in rows)
    device = next(model.parameters()).device
    ids = torch.tensor([[*row, *[0] * (longest - len(row))] for row in rows], device=device)
    logits, state = model(torch.tensor([list(context)], device=device))
    batch = len(rows)
    state = tuple(t.expand(-1, batch, -1).contiguous() for t in state)
    predicted = logits[:, -1:].expand(batch, -1, -1)  # what each row's first token is read against
    if longest > 1:
        predicted = torch.cat([predicted, model(ids[:, :-1], state)[0]], 1)
    written = torch.log_softmax(predicted.float(), -1).gather(-1, ids[..., None])[..., 0]
    lengths = torch.tensor([len(row) for row in rows], device=device)
    return written.masked_fill(torch.arange(longest, device=device)[None] >= lengths[:, None], 0.0).cpu()


def _until_end(ids: list[int], end_token: int | None) -> list[int]:
    return ids[: ids.index(end_token)] if end_token is not None and end_token in ids else ids
