import pytest
import torch

from genseq.lm import fastpath
from genseq.lm.config import SampleConfig
from genseq.lm.fastpath import LSTMStep, TokenSelector
from genseq.lm.sampling import draw, generate, next_token_probs
from tests.helpers import assert_draws_follow, assert_step_follows_model, trained_looking_model


@pytest.mark.parametrize("options", [{}, {"num_layers": 1}, {"num_layers": 3, "embedding_size": 20},
                                     {"tie_weights": True}])
@pytest.mark.parametrize("onednn", [True, False], ids=["onednn", "torch.mm"])
@pytest.mark.parametrize("batch_size", [3, fastpath.SIGMOID_TANH_MIN_BATCH], ids=["tanh", "tanh-by-sigmoid"])
def test_fast_step_gives_the_models_logits(options, onednn, batch_size, monkeypatch):
    if onednn and not fastpath._onednn_linear_available(torch.float32):
        pytest.skip("this PyTorch build has no oneDNN")
    monkeypatch.setattr(fastpath, "_onednn_linear_available", lambda dtype: onednn)
    model = trained_looking_model(**options)
    step, state = LSTMStep(model, batch_size), model.init_state(batch_size)
    step.load_state(state)
    assert_step_follows_model(step, model, state, 40)


@pytest.mark.parametrize("batch_size", [1, 2])
@pytest.mark.parametrize("precision, hidden_size, num_layers", [
    ("bf16", 48, 2), ("int8", 48, 2), ("int8", 20, 2), ("int8", 32, 3),  # 3 layers: strided inputs
])
def test_low_precision_fast_step_stays_close_to_the_model(batch_size, precision, hidden_size, num_layers, cpu_view):
    """bf16 products run emulated where the CPU lacks bf16 (slow, still right); int8 takes the kernel the CPU runs."""
    model = trained_looking_model(hidden_size=hidden_size, num_layers=num_layers)
    step, state = LSTMStep(model, batch_size, precision), model.init_state(batch_size)
    kernel = fastpath.int8_kernel()
    if precision == "int8" and kernel == "weight-only":  # inputs of 20 and 40: not whole int8 blocks, so bf16
        expected = ["weight-only" if hidden_size % fastpath.INT8_BLOCK == 0 else "onednn-or-mm"] * num_layers
        assert [p.kind if p.kind == "weight-only" else "onednn-or-mm" for p in step.products] == expected
    elif precision == "int8" and kernel == "fbgemm":  # any length: fbgemm quantizes fp32 inputs itself
        assert [p.kind for p in step.products] == ["fbgemm"] * num_layers and step.h.dtype == torch.float32
    tokens = torch.tensor([4, 5][:batch_size])
    with torch.inference_mode():
        for _ in range(20):
            expected, state = model.step(tokens, state)
            got = step(tokens)
            tokens = expected.argmax(-1)
            assert (torch.softmax(got, -1) - torch.softmax(expected, -1)).abs().max() < 0.05


@pytest.mark.parametrize("temperature, top_k, top_p", [
    (1.0, None, None), (0.7, None, None), (1.3, 5, None), (1.0, None, 0.9), (0.8, 7, 0.5), (1.0, 30, 1.0),
])
def test_selector_distribution_is_next_token_probs(temperature, top_k, top_p):
    logits = torch.randn(4, 30, generator=torch.Generator().manual_seed(1)) * 3
    select = TokenSelector(4, 30, temperature, top_k, top_p, torch.Generator())
    select(logits)
    assert torch.equal(select.probs, next_token_probs(logits, temperature, top_k, top_p))


def test_selector_draws_the_same_tokens_as_the_plain_draw():
    logits = torch.randn(5, 30, generator=torch.Generator().manual_seed(2)) * 2
    select = TokenSelector(5, 30, 0.9, None, 0.95, torch.Generator().manual_seed(7))
    plain_generator = torch.Generator().manual_seed(7)
    for _ in range(200):
        expected = draw(next_token_probs(logits, 0.9, None, 0.95), plain_generator)
        assert torch.equal(select(logits), expected)


def test_selector_draws_follow_the_distribution():
    probs = torch.tensor([[0.5, 0.0, 0.3, 0.15, 0.05]])
    select = TokenSelector(1, 5, 1.0, None, None, torch.Generator().manual_seed(3))
    tokens = torch.cat([select(probs.log()).clone() for _ in range(20_000)])
    assert_draws_follow(tokens, probs[0], atol=0.015)


@pytest.mark.parametrize("options", [
    {"temperature": 0}, {"temperature": 0, "num_samples": 3, "seed": 9}, {"seed": 4}, {"temperature": 1.0, "seed": 4},
    {"temperature": 0.8, "top_k": 5, "seed": 5},
    {"temperature": 1.0, "top_p": 0.9, "seed": 6}, {"temperature": 1.0, "num_samples": 4, "seed": 7},
    {"temperature": 1.0, "num_samples": 3, "seed": 8, "prelude": [6, 7, 8, 0]},
])
def test_fast_and_plain_generate_give_the_same_tokens(options):
    model = trained_looking_model()
    prelude = options.pop("prelude", ())
    config = SampleConfig(**{"length": 150, "stop_at_end": False, "precision": "fp32", **options})
    fast = generate(model, [3, 4, 5], config, end_token=0, fast=True, prelude=prelude)
    assert fast == generate(model, [3, 4, 5], config, end_token=0, fast=False, prelude=prelude)
    assert all(len(row) == 150 for row in fast)


def test_fast_generate_stops_each_sample_at_the_end_token():
    model = trained_looking_model()
    with torch.no_grad():
        model.head.bias[0] += 12.0
    config = SampleConfig(length=300, num_samples=3, seed=1, precision="fp32")
    fast = generate(model, [], config, end_token=0, fast=True)
    assert fast == generate(model, [], config, end_token=0, fast=False)
    assert all(0 not in row and len(row) < 300 for row in fast)

