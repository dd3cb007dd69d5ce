"""Helpers shared by the sampler's tests on every device (test_fastpath, test_sampling, test_cuda)."""

import torch

from genseq.lm.config import ModelConfig
from genseq.lm.model import LSTMLanguageModel


def trained_looking_model(seed: int = 0, **options) -> LSTMLanguageModel:
    """Random weights scaled up so the next-token distributions are peaked, as after training."""
    torch.manual_seed(seed)
    config = ModelConfig(**{"vocab_size": 30, "hidden_size": 48, "num_layers": 2, **options})
    model = LSTMLanguageModel(config).eval()
    with torch.no_grad():
        for name, weight in model.named_parameters():
            weight.mul_(8.0 if name.startswith("head") else 3.0)
    return model


def assert_draws_follow(tokens: torch.Tensor, probs: torch.Tensor, atol: float) -> None:
    """Drawn token ids follow `probs` [vocab]: each frequency within `atol`, and no token of probability 0 drawn."""
    counts = torch.bincount(tokens.flatten().cpu(), minlength=probs.shape[-1]).double()
    probs = probs.cpu().double()
    assert counts[probs == 0].sum() == 0, f"tokens of probability 0 drawn: {counts[probs == 0].tolist()}"
    torch.testing.assert_close(counts / counts.sum(), probs, atol=atol, rtol=0)


def assert_step_follows_model(step, model: LSTMLanguageModel, state, steps: int) -> None:
    """`step` (loaded with `state`) gives the model's logits and state over `steps` greedy steps."""
    batch_size = state[0].shape[1]
    tokens = torch.arange(batch_size, device=state[0].device) % model.config.vocab_size
    with torch.inference_mode():
        for _ in range(steps):
            expected, state = model.step(tokens, state)
            torch.testing.assert_close(step(tokens), expected, rtol=1e-4, atol=1e-4)
            tokens = expected.argmax(-1)
    torch.testing.assert_close(step.state(), state, rtol=1e-4, atol=1e-4)
