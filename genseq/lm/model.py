"""The stacked LSTM language model, with a one-step API for sampling."""

from __future__ import annotations

import math
import sys

import torch
from torch import nn

from genseq.lm.config import ModelConfig

State = tuple[torch.Tensor, torch.Tensor]
"""(h, c), each [num_layers, batch, hidden_size]."""

_LSTM_WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
_SIGNED_LANE = 3 if sys.byteorder == "little" else 0
"""The 16-bit lane of a non-negative int64 that holds its (always clear) sign bit: 15 random bits, not 16."""


def dropout(x: torch.Tensor, p: float, training: bool, locked: bool = False) -> torch.Tensor:
    """Inverted dropout, as `nn.functional.dropout`, with a cheaper mask on the CPU.

    `locked` (variational dropout, Gal & Ghahramani 2016): one mask per sequence of x [batch, time,
    features], the same at every time step, so a unit dropped is dropped for the whole window.

    PyTorch's CPU Bernoulli draw costs ~5.6 ns an element, a fifth of a training step of the
    2x512 model here. This mask cuts each 64-bit random word into four 16-bit lanes, one element
    each, compared in place: the keep probability is exact to 1/65536 (1/32768 on the lane that
    holds the word's sign bit).
    """
    threshold = round((1 - p) * 65536) - 32768  # a uniform int16 lane is below it with probability 1 - p
    if not training or threshold > 32767:  # p under 1/131072: nothing would be dropped
        return x
    shape = (x.shape[0], 1, *x.shape[2:]) if locked else x.shape
    if x.device.type != "cpu" and not locked:
        return nn.functional.dropout(x, p, True)
    if x.device.type != "cpu":
        keep = torch.empty(shape, device=x.device, dtype=x.dtype).bernoulli_(1 - p)
        return (x * keep).mul_(1 / (1 - p))
    thresholds = torch.full((4,), threshold, dtype=torch.int16)
    thresholds[_SIGNED_LANE] = min(round((1 - p) * 32768), 32767)  # that lane is uniform on [0, 32767]
    n = math.prod(shape)
    words = torch.empty(-(-n // 4), dtype=torch.int64).random_()
    keep = (words.view(torch.int16).view(-1, 4) < thresholds).view(-1)[:n].view(shape)
    return (x * keep).mul_(1 / (1 - p))


class LSTMLanguageModel(nn.Module):
    """Embedding -> dropout -> nn.LSTM(num_layers, dropout between layers) -> dropout -> linear head."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_size)
        self.lstm = nn.LSTM(
            config.embedding_size,
            config.hidden_size,
            num_layers=config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.head = nn.Linear(config.hidden_size, config.vocab_size)
        if config.tie_weights:
            self.head.weight = self.embedding.weight

    def init_state(self, batch_size: int, device: torch.device | None = None) -> State:
        shape = (self.config.num_layers, batch_size, self.config.hidden_size)
        device = device or self.head.weight.device
        return torch.zeros(shape, device=device), torch.zeros(shape, device=device)

    def forward(self, token_ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Logits [batch, time, vocab] for token ids [batch, time], and the state after the last step."""
        p, locked = self.config.dropout, self.config.locked_dropout
        hidden, state = self._lstm(dropout(self.embedding(token_ids), p, self.training, locked), state)
        return self.head(dropout(hidden, p, self.training, locked)), state

    def _lstm(self, x: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
        """nn.LSTM; when training with dropout between layers on the CPU or with locked masks, one layer at a
        time with `dropout` between them (nn.LSTM would draw its own masks: slower on the CPU, never locked)."""
        layers = self.config.num_layers
        own_masks = x.device.type == "cpu" or self.config.locked_dropout
        if not (self.training and own_masks and layers > 1 and self.config.dropout > 0):
            return self.lstm(x, state)
        h0, c0 = state if state is not None else self.init_state(x.shape[0], x.device)
        hs, cs = [], []
        for layer in range(layers):
            if layer:
                x = dropout(x, self.config.dropout, True, self.config.locked_dropout)
            weights = [getattr(self.lstm, f"{name}_l{layer}") for name in _LSTM_WEIGHTS]
            # one layer of nn.LSTM's own kernel: biases, 1 layer, no dropout, training, one direction, batch first
            x, h, c = torch.lstm(x, (h0[layer : layer + 1], c0[layer : layer + 1]), weights, True, 1, 0.0, True,
                                 False, True)
            hs.append(h)
            cs.append(c)
        return x, (torch.cat(hs), torch.cat(cs))

    def step(self, token_ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Logits [batch, vocab] for one token per sequence [batch]: the sampler's API."""
        logits, state = self(token_ids[:, None], state)
        return logits[:, 0], state

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
