"""Growing a trained model's vocabulary for fine-tuning: new symbols get rows that take no probability yet.

A fine-tuned model keeps every weight it learnt. A symbol its vocabulary lacked gets an embedding row at the
mean of the known ones (an input like an average one) and an output row of zeros (when the head is not tied
to the embedding) with a bias so low that no hidden state can raise its logit near a known symbol's: the LSTM's
output lies in [-1, 1] per unit, so a known row's logit is at least its bias minus its weights' L1 norm. Before
the first step the known symbols keep their probabilities to within `NEW_MASS` in all.
"""

from __future__ import annotations

import math

import torch

NEW_MASS = 1e-7
"""The most probability all new symbols together may take from the known ones on any context, before training."""


def grow_vocabulary(state: dict[str, torch.Tensor], keep: list[int | None], *,
                    tied: bool) -> dict[str, torch.Tensor]:
    """`state` (an LSTMLanguageModel's) for the vocabulary whose id i was the old id `keep[i]`, or new (None).

    `tied`: the head shares the embedding's weights, so a new output row is the new embedding row."""
    embedding, head, bias = state["embedding.weight"], state["head.weight"], state["head.bias"]
    new = torch.tensor([old is None for old in keep])
    index = torch.tensor([0 if old is None else old for old in keep])
    grown = dict(state)
    grown["embedding.weight"] = embedding[index].clone()
    grown["embedding.weight"][new] = embedding.mean(dim=0)
    if tied:
        grown["head.weight"] = grown["embedding.weight"]
    else:
        grown["head.weight"] = head[index].clone()
        grown["head.weight"][new] = 0.0
    grown["head.bias"] = bias[index].clone()
    count = int(new.sum())
    if count:
        known = ~new
        lowest_known = (grown["head.bias"][known] - grown["head.weight"][known].abs().sum(dim=1)).min()
        highest_new = grown["head.weight"][new].abs().sum(dim=1)
        margin = math.log(count / NEW_MASS)  # each new symbol below every known one by e**margin
        grown["head.bias"][new] = lowest_known - highest_new - margin
    return grown


__all__ = ["NEW_MASS", "grow_vocabulary"]
