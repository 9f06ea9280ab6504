"""Ranking: DTW, the sketch fast path, the in-memory catalogue, blend weights."""
