"""A candidate for sampling on a GPU: the model's one-token step replayed as one CUDA graph.

At batch 1 a step on a GPU is bound by kernel launches, not arithmetic: an embedding lookup, two
products and the cell's pointwise kernel per layer, the head, each a few microseconds of launch for
less work than that. A CUDA graph records them once and replays them in one launch.

Not yet used by `sampling.generate` (which steps `model.step` on a GPU): `benchmarks/gpu.py` measures it
against that path, and tests/test_cuda.py checks its logits, before it is wired in.
"""

from __future__ import annotations

import torch

from genseq.lm.model import LSTMLanguageModel, State


class GraphedStep:
    """`model.step` for `batch_size` sequences over static buffers: token ids [batch] -> logits [batch, vocab].

    Each layer runs as `torch.lstm_cell` (nn.LSTM's equations, no dropout: the model in eval mode), so the
    step holds no cuDNN call, whose set-up copies from the host cannot be captured. `graph` (default: on
    CUDA) records the step once as a CUDA graph and replays it; without it the same step runs eagerly,
    which is how it is checked on the CPU. The returned logits tensor is overwritten by the next call.
    """

    def __init__(self, model: LSTMLanguageModel, batch_size: int, graph: bool | None = None):
        self.model = model.eval()
        lstm, layers, hidden = model.lstm, model.config.num_layers, model.config.hidden_size
        device = model.head.weight.device
        self.weights = [tuple(getattr(lstm, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih",
                                                                              "bias_hh")) for layer in range(layers)]
        self.tokens = torch.zeros(batch_size, dtype=torch.long, device=device)
        self.h = torch.zeros(layers, batch_size, hidden, device=device)
        self.c = torch.zeros(layers, batch_size, hidden, device=device)
        self.graph: torch.cuda.CUDAGraph | None = None
        if graph is None:
            graph = device.type == "cuda"
        if graph:
            self._capture()

    @torch.no_grad()
    def _step(self) -> torch.Tensor:
        x = self.model.embedding(self.tokens)
        for layer, weights in enumerate(self.weights):
            h, c = torch.lstm_cell(x, (self.h[layer], self.c[layer]), *weights)
            self.h[layer].copy_(h)
            self.c[layer].copy_(c)
            x = h
        return self.model.head(x)

    def _capture(self) -> None:
        """Warm up on a side stream (as torch.cuda.graphs asks), record one step, then restore the state."""
        h, c = self.h.clone(), self.c.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                self._step()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.logits = self._step()
        self.load_state((h, c))

    def load_state(self, state: State) -> None:
        """Start from the model's (h, c) [num_layers, batch, hidden], e.g. after feeding a primer."""
        self.h.copy_(state[0])
        self.c.copy_(state[1])

    def state(self) -> State:
        return self.h.clone(), self.c.clone()

    def __call__(self, token_ids: torch.Tensor) -> torch.Tensor:
        self.tokens.copy_(token_ids)
        if self.graph is None:
            return self._step()
        self.graph.replay()
        return self.logits
