"""Training tools: corpus, data, training loop, evaluation."""
