"""The track library: its store, indexing, and the built-in demo library."""
