"""Pipelines: compose, match-or-compose for a video, batch."""
