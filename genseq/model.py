"""The stacked LSTM language model, with a one-step API for sampling."""

from __future__ import annotations

import torch
from torch import nn

from genseq.config import ModelConfig

State = tuple[torch.Tensor, torch.Tensor]
"""(h, c), each [num_layers, batch, hidden_size]."""


class LSTMLanguageModel(nn.Module):
    """Embedding -> dropout -> nn.LSTM(num_layers, dropout between layers) -> dropout -> linear head."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_size)
        self.dropout = nn.Dropout(config.dropout)
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
        hidden, state = self.lstm(self.dropout(self.embedding(token_ids)), state)
        return self.head(self.dropout(hidden)), state

    def step(self, token_ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Logits [batch, vocab] for one token per sequence [batch]: the sampler's API."""
        logits, state = self(token_ids[:, None], state)
        return logits[:, 0], state

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
