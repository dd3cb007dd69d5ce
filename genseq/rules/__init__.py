"""What the sampler applies while it draws (`genseq.lm.sampling.TokenRule`): full bars and a valid header for ABC
tunes, voice leading for chorales, and a given melody to harmonise."""

CANDIDATES = 8
"""Harmonisations drawn for each one kept (`TrainedModel.harmonize`); here, without torch, for `genseq --help`."""
