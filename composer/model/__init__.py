"""The conditional transformer: tokens, model, checkpoint I/O, generation."""
