"""Growing a vocabulary: new symbols take no probability from the known ones before training."""

import numpy as np
import pytest
import torch

from genseq.lm.config import ModelConfig
from genseq.lm.grow import NEW_MASS, fit_new_bias, grow_vocabulary
from genseq.lm.model import LSTMLanguageModel


def _probabilities(model: LSTMLanguageModel, context: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return torch.softmax(model(context[None])[0][0], dim=-1)


@pytest.mark.parametrize("tied", [False, True])
def test_known_symbols_keep_their_probabilities_and_new_rows_start_at_the_mean(tied):
    torch.manual_seed(0)
    old = LSTMLanguageModel(ModelConfig(vocab_size=8, hidden_size=16, num_layers=2, tie_weights=tied))
    with torch.no_grad():  # a trained head's biases differ; the bound must hold for any
        old.head.bias.copy_(torch.randn(8) * 3)
    keep = [0, 1, 2, 5, None, 3, 4, None, 6, 7]  # old id of each new id: reordered, two symbols new
    grown = LSTMLanguageModel(ModelConfig(vocab_size=10, hidden_size=16, num_layers=2, tie_weights=tied))
    grown.load_state_dict(grow_vocabulary(old.state_dict(), keep, tied=tied))

    context = torch.tensor([1, 3, 5, 7, 2, 6, 4])
    before = _probabilities(old, context)
    after = _probabilities(grown, torch.tensor([keep.index(i) for i in context.tolist()]))
    known = [i for i, k in enumerate(keep) if k is not None]
    assert torch.allclose(after[:, known], before[:, [keep[i] for i in known]], atol=1e-6, rtol=0)
    assert after[:, [4, 7]].sum(dim=-1).max() < 1e-6
    mean = old.embedding.weight.detach().mean(dim=0)
    assert torch.allclose(grown.embedding.weight[4], mean) and torch.allclose(grown.embedding.weight[7], mean)
    if not tied:
        assert not grown.head.weight[[4, 7]].any()


def test_new_biases_fitted_on_the_data_rise_to_take_at_most_the_new_mass_on_its_contexts():
    torch.manual_seed(0)
    old = LSTMLanguageModel(ModelConfig(vocab_size=8, hidden_size=16, num_layers=2))
    keep = [0, 1, 2, 3, 4, 5, 6, 7, None, None]
    grown = LSTMLanguageModel(ModelConfig(vocab_size=10, hidden_size=16, num_layers=2))
    grown.load_state_dict(grow_vocabulary(old.state_dict(), keep, tied=False))
    worst_case = grown.head.bias[8:].clone()
    data = np.random.default_rng(0).integers(0, 10, 3000)
    new = torch.tensor([k is None for k in keep])
    fit_new_bias(grown, new, data)
    assert (grown.head.bias[8:] > worst_case + 1).all()  # the worst-case start was lower than needed
    grown.eval()
    with torch.no_grad():
        taken = torch.softmax(grown(torch.as_tensor(data[:512])[None])[0][0], dim=-1)[:, new].sum(dim=-1)
    assert taken.max() <= NEW_MASS * 1.001 and taken.max() > NEW_MASS / 10  # as high as allowed, no higher
