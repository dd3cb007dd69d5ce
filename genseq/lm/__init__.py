"""The language model, knowing nothing of music: settings, machine facts, the LSTM, token caches and batches,
checkpoints, the training loop and its plan, and sampling (with the CPU fast path)."""
