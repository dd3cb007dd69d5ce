"""Growing a trained model's vocabulary for fine-tuning: new symbols get rows that take no probability yet.

A fine-tuned model keeps every weight it learnt. A symbol its vocabulary lacked gets an embedding row at the
mean of the known ones (an input like an average one) and an output row of zeros (when the head is not tied
to the embedding) with a bias so low that no hidden state can raise its logit near a known symbol's: the LSTM's
output lies in [-1, 1] per unit, so a known row's logit is at least its bias minus its weights' L1 norm. Before
the first step the known symbols keep their probabilities to within `NEW_MASS` in all.

That bound holds for any hidden state, and is far below what real contexts need: a new symbol's bias starts
some 120 nats down, and Adam moves a bias by about the learning rate a step, so in a short fine-tune the symbol
could be learnt only through its weights. `fit_new_bias` raises the new biases to where they take `NEW_MASS` on
the contexts of the user's own data, no higher.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from genseq.lm.model import LSTMLanguageModel

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


FIT_TOKENS = 32_768
"""Tokens of the user's data the new biases are fitted on (a second of the CPU at the shipped models' size)."""
FIT_ROW = 512


@torch.no_grad()
def fit_new_bias(model: LSTMLanguageModel, new: torch.Tensor, tokens: np.ndarray) -> None:
    """Set each new symbol's bias (in `model`, grown by `grow_vocabulary`; `new` marks their ids) as high as it
    may go while all new symbols together take at most NEW_MASS on every context of the first FIT_TOKENS of
    `tokens` (each below every context's known logits by log(count / NEW_MASS))."""
    count = int(new.sum())
    used = np.array(tokens[:FIT_TOKENS], dtype=np.int64)  # a copy: the tokens are a read-only memory map
    width = min(FIT_ROW, len(used))
    if not count or width < 2:
        return
    rows = torch.as_tensor(used[: len(used) // width * width], dtype=torch.long).reshape(-1, width)
    was_training = model.training
    model.eval()
    logits = model(rows)[0].flatten(0, 1).float()
    model.train(was_training)
    room = (logits[:, new] - torch.logsumexp(logits[:, ~new], dim=-1, keepdim=True)).amax(dim=0)
    model.head.bias[new] -= room + math.log(count / NEW_MASS)


__all__ = ["NEW_MASS", "fit_new_bias", "grow_vocabulary"]
