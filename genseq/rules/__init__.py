"""What the sampler applies while it draws (`genseq.lm.sampling.TokenRule`): full bars and a valid header for ABC
tunes, voice leading for chorales, and a given melody to harmonise."""
