"""The model's own pieces: genseq's dropout and the layer-by-layer LSTM it trains with on the CPU."""

import pytest
import torch

import genseq.lm.model
from genseq.lm.config import ModelConfig
from genseq.lm.model import LSTMLanguageModel, dropout


@pytest.mark.parametrize("p", [0.05, 0.2, 0.5, 0.9])
def test_dropout_drops_a_share_p_in_every_lane_and_scales_the_rest(p):
    torch.manual_seed(0)
    x = torch.rand(4_000_001) + 0.5  # odd length: the last random word is cut
    y = dropout(x, p, training=True)
    dropped = y == 0
    lanes = dropped[:4_000_000].view(-1, 4).float().mean(0)  # each 16-bit lane of the random words
    torch.testing.assert_close(lanes, torch.full((4,), p), atol=0.002, rtol=0)
    torch.testing.assert_close(y[~dropped], x[~dropped] / (1 - p))


def test_dropout_passes_gradients_through_the_kept_elements_only():
    x = torch.ones(10_000, requires_grad=True)
    y = dropout(x, 0.25, training=True)
    y.sum().backward()
    torch.testing.assert_close(x.grad, (y != 0).float() / 0.75)


def test_dropout_is_the_identity_in_evaluation_and_for_a_negligible_p():
    x = torch.randn(1000)
    assert dropout(x, 0.5, training=False) is x and dropout(x, 1e-6, training=True) is x


@pytest.mark.parametrize("p", [0.1, 0.4])
def test_locked_dropout_keeps_one_mask_per_sequence_for_every_time_step(p):
    torch.manual_seed(0)
    x = torch.rand(64, 50, 1000) + 0.5  # [batch, time, features]
    y = dropout(x, p, training=True, locked=True)
    dropped = y == 0
    assert torch.equal(dropped, dropped[:, :1].expand_as(dropped))  # a unit dropped at one step is dropped at all
    torch.testing.assert_close(dropped[:, 0].float().mean(), torch.tensor(p), atol=0.005, rtol=0)
    torch.testing.assert_close(y[~dropped], x[~dropped] / (1 - p))
    assert not torch.equal(dropped[0, 0], dropped[1, 0])  # each sequence draws its own mask


def test_a_run_saved_before_locked_dropout_resumes_with_per_token_masks():
    from genseq.lm.config import from_dict

    saved = {"vocab_size": 30, "hidden_size": 32, "num_layers": 2, "dropout": 0.3}  # a model config written before
    assert from_dict(ModelConfig, saved).locked_dropout is False


def test_a_model_with_locked_dropout_masks_whole_sequences_in_training_only():
    torch.manual_seed(0)
    model = LSTMLanguageModel(ModelConfig(vocab_size=30, hidden_size=32, num_layers=2, dropout=0.5,
                                          locked_dropout=True))
    tokens = torch.randint(0, 30, (8, 20))
    seen = []
    model.head.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    model.train()(tokens)
    zero = seen[0] == 0  # the head's input: dropped units are zero at every time step of their sequence
    assert zero.any() and torch.equal(zero, zero[:, :1].expand_as(zero))
    model.eval()
    torch.testing.assert_close(model(tokens)[0], model(tokens)[0], rtol=0, atol=0)


def test_training_layer_by_layer_gives_nn_lstms_outputs_and_state(monkeypatch):
    torch.manual_seed(0)
    model = LSTMLanguageModel(ModelConfig(vocab_size=30, hidden_size=32, num_layers=3, dropout=0.3)).train()
    inputs = model.embedding(torch.randint(0, 30, (4, 12)))
    state = (torch.randn(3, 4, 32), torch.randn(3, 4, 32))
    model.lstm.dropout = 0.0  # nn.LSTM's own masks off, and genseq's below: the two paths must then agree
    monkeypatch.setattr(genseq.lm.model, "dropout", lambda x, p, training, locked=False: x)
    expected, (h, c) = model.lstm(inputs, state)
    got, (got_h, got_c) = model._lstm(inputs, state)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    torch.testing.assert_close((got_h, got_c), (h, c), rtol=0, atol=0)
    got.sum().backward()  # and gradients reach every layer's weights
    assert all(getattr(model.lstm, f"weight_hh_l{layer}").grad is not None for layer in range(3))
