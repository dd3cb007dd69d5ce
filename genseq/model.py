"""The stacked LSTM language model, with a one-step API for sampling."""

from __future__ import annotations

import torch
from torch import nn

from genseq.config import ModelConfig

State = tuple[torch.Tensor, torch.Tensor]
"""(h, c), each [num_layers, batch, hidden_size]."""


def _cpu_low_precision() -> torch.dtype | None:
    """bf16 when CPU autocast to bf16 is on (there `_LSTMLayer` trains faster than oneDNN's LSTM), else None."""
    if torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16:
        return torch.bfloat16
    return None


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
        embedded = self.dropout(self.embedding(token_ids))
        low = _cpu_low_precision() if token_ids.device.type == "cpu" and torch.is_grad_enabled() else None
        if low is not None:
            hidden, state = lstm_forward(self.lstm, embedded, state, self.training, low)
        else:
            hidden, state = self.lstm(embedded, state)
        return self.head(self.dropout(hidden)), state

    def step(self, token_ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Logits [batch, vocab] for one token per sequence [batch]: the sampler's API."""
        logits, state = self(token_ids[:, None], state)
        return logits[:, 0], state

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class _LSTMLayer(torch.autograd.Function):
    """One LSTM layer over a whole window [time, batch, input] in `dtype`.

    The input projection, and in backward the input and weight gradients, are single large matrix
    products over all time steps; only h @ W_hh (and its transpose in backward) runs per step.
    """

    @staticmethod
    def forward(ctx, inputs, h0, c0, w_ih, w_hh, bias, dtype):
        with torch.autocast("cpu", enabled=False):
            steps, batch, _ = inputs.shape
            n = w_hh.shape[1]
            w_ih_low, w_hh_low, x = w_ih.to(dtype), w_hh.to(dtype), inputs.to(dtype)
            gates = torch.addmm(bias.to(dtype), x.reshape(steps * batch, -1), w_ih_low.T).view(steps, batch, 4 * n)
            gates = gates.float()
            cells = torch.empty(steps + 1, batch, n)
            hidden = torch.empty(steps + 1, batch, n, dtype=dtype)
            tanh_cells = torch.empty(steps, batch, n)
            cells[0], hidden[0] = c0, h0
            recurrent, w_hh_t = torch.empty(batch, 4 * n, dtype=dtype), w_hh_low.T
            for t in range(steps):
                g = gates[t]
                torch.mm(hidden[t], w_hh_t, out=recurrent)
                g.add_(recurrent)
                g[:, : 2 * n].sigmoid_()
                g[:, 2 * n : 3 * n].tanh_()
                g[:, 3 * n :].sigmoid_()
                torch.mul(g[:, n : 2 * n], cells[t], out=cells[t + 1])
                cells[t + 1].addcmul_(g[:, :n], g[:, 2 * n : 3 * n])
                torch.tanh(cells[t + 1], out=tanh_cells[t])
                torch.mul(g[:, 3 * n :], tanh_cells[t], out=hidden[t + 1])
        ctx.save_for_backward(x, w_ih_low, w_hh_low, gates, cells, hidden, tanh_cells)
        ctx.input_dtype = inputs.dtype
        return hidden[1:], hidden[-1].to(torch.float32, copy=True), cells[-1].clone()

    @staticmethod
    def backward(ctx, d_out, d_h_last, d_c_last):
        x, w_ih_low, w_hh_low, gates, cells, hidden, tanh_cells = ctx.saved_tensors
        with torch.autocast("cpu", enabled=False):
            steps, batch, four_n = gates.shape
            n = four_n // 4
            i, f, g, o = gates[..., :n], gates[..., n : 2 * n], gates[..., 2 * n : 3 * n], gates[..., 3 * n :]
            # per-step work is then: d_gates[i, f, g] = dc * partner, d_gates[o] = dh * q, dc += dh * r
            partner = torch.empty(steps, batch, 3, n)
            torch.mul(g, i * (1 - i), out=partner[:, :, 0])
            torch.mul(cells[:-1], f * (1 - f), out=partner[:, :, 1])
            torch.mul(i, 1 - g * g, out=partner[:, :, 2])
            q = tanh_cells * o * (1 - o)
            r = o * (1 - tanh_cells * tanh_cells)
            d_gates = torch.empty(steps, batch, four_n, dtype=x.dtype)
            dh = torch.empty(batch, n)
            dc = d_c_last.float().clone() if d_c_last is not None else torch.zeros(batch, n)
            dh_next = d_h_last.to(x.dtype) if d_h_last is not None else torch.zeros(batch, n, dtype=x.dtype)
            dh_next = dh_next.clone()
            d_out = d_out.float() if d_out is not None else torch.zeros(steps, batch, n)
            for t in range(steps - 1, -1, -1):
                torch.add(d_out[t], dh_next, out=dh)
                dc.addcmul_(dh, r[t])
                torch.mul(dh, q[t], out=d_gates[t, :, 3 * n :])
                torch.mul(dc[:, None], partner[t], out=d_gates[t, :, : 3 * n].view(batch, 3, n))
                dc.mul_(f[t])
                torch.mm(d_gates[t], w_hh_low, out=dh_next)
            flat = d_gates.view(steps * batch, four_n)
            d_inputs = (flat @ w_ih_low).view(steps, batch, -1).to(ctx.input_dtype)
            d_w_ih = (flat.T @ x.reshape(steps * batch, -1)).float()
            d_w_hh = (flat.T @ hidden[:-1].reshape(steps * batch, n)).float()
            d_bias = flat.float().sum(0)
        return d_inputs, dh_next.float(), dc, d_w_ih, d_w_hh, d_bias, None


def lstm_forward(lstm: nn.LSTM, inputs: torch.Tensor, state: State | None, training: bool,
                 dtype: torch.dtype) -> tuple[torch.Tensor, State]:
    """`lstm(inputs, state)` (batch first) computed by `_LSTMLayer` in `dtype`: same parameters, same dropout."""
    batch, n, layers = inputs.shape[0], lstm.hidden_size, lstm.num_layers
    if state is None:
        zeros = torch.zeros(layers, batch, n, device=inputs.device)
        state = (zeros, zeros)
    x, h_last, c_last = inputs.transpose(0, 1), [], []
    for layer in range(layers):
        if layer:
            x = nn.functional.dropout(x, lstm.dropout, training)
        weights = [getattr(lstm, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        x, h, c = _LSTMLayer.apply(x, state[0][layer], state[1][layer], weights[0], weights[1],
                                   weights[2] + weights[3], dtype)
        h_last.append(h)
        c_last.append(c)
    return x.transpose(0, 1), (torch.stack(h_last), torch.stack(c_last))
