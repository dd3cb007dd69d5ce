"""Decoding strategies over the model's one-step API; the hidden state is carried, never recomputed."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from genseq.config import SampleConfig
from genseq.model import LSTMLanguageModel
from genseq.runtime import make_generator


def next_token_probs(logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """Probabilities [batch, vocab] after temperature, top-k and top-p (nucleus) filtering.

    Temperature 0 puts all mass on the argmax. Top-p keeps the smallest set of most likely tokens
    whose mass reaches `top_p` (always at least one token).
    """
    logits = logits.float()
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()
    logits = logits / temperature
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


@torch.inference_mode()
def generate(
    model: LSTMLanguageModel,
    primer: Sequence[int],
    config: SampleConfig,
    end_token: int,
    on_step: Callable[[torch.Tensor], None] | None = None,
) -> list[list[int]]:
    """`config.num_samples` continuations of `primer`, drawn in one batch.

    The primer is fed once to build the hidden state; every new token then costs one step. A
    sample ends at `end_token` (when `config.stop_at_end`) or after `config.length` new tokens.
    `on_step` sees each step's tokens [batch] as they are drawn (for streaming to a terminal).
    """
    model.eval()
    device = model.head.weight.device
    generator = make_generator(config.seed)
    batch = config.num_samples
    context = torch.tensor([end_token, *primer], device=device).expand(batch, -1)
    logits, state = model(context)
    logits = logits[:, -1]
    samples = torch.empty(batch, config.length, dtype=torch.long)
    finished = torch.zeros(batch, dtype=torch.bool)
    steps = 0
    for steps in range(1, config.length + 1):
        probs = next_token_probs(logits, config.temperature, config.top_k, config.top_p).cpu()
        token = torch.multinomial(probs, 1, generator=generator)[:, 0]
        token = torch.where(finished, end_token, token)
        samples[:, steps - 1] = token
        if on_step:
            on_step(token)
        if config.stop_at_end:
            finished |= token == end_token
            if finished.all():
                break
        logits, state = model.step(token.to(device), state)
    return [_until_end(row, end_token if config.stop_at_end else None) for row in samples[:, :steps].tolist()]


def _until_end(ids: list[int], end_token: int | None) -> list[int]:
    return ids[: ids.index(end_token)] if end_token is not None and end_token in ids else ids
