"""Ranking across machines: a catalogue split into shards held by Dask workers.

Each worker holds one shard, a :class:`~matching.ranking.catalog.Catalog` of every
``n``-th track, and that shard's sketch tables (built where the shard lives, kept as long
as the shard). A query goes to every shard at once; each shard ranks its tracks with the
same :func:`matching.rank` as one process and returns its top ``k``; the client merges
them by score (ties by track id, like :func:`matching.rank`).

Why the merge equals one process: exact ranking scores every track on its own, so the
top ``k`` of all tracks is the top ``k`` of the shards' top ``k``. On the fast path each
shard shortlists as many tracks as one process would for the whole catalogue
(:func:`~matching.ranking.ranker.shortlist_size` of the total), so the union of the shard
shortlists contains the one-process shortlist: the merged top ``k`` can only differ by
a better track that one process missed.

Shards come from a catalogue in this process (:meth:`ShardedCatalog.scatter`: the rows
travel to the workers) or straight from the library database
(:meth:`ShardedCatalog.from_library`: each worker reads its own rows, read-only, so
nothing large passes through the client).

>>> with get_client(scheduler="tcp://host:8786") as client:
...     shards = ShardedCatalog.from_library("postgresql://host/music", client)
...     hits = shards.rank(clip, k=10)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from analysis.errors import ParameterError
from matching.ranking.catalog import Catalog
from matching.ranking.ranker import Match, Ranking, clip_arc, positive_count, rank, shortlist_size
from matching.ranking.weights import MatchWeights, weights_for

if TYPE_CHECKING:
    from distributed import Client


def load_shard(url: str, index: int, count: int) -> Catalog:
    """Rows ``id % count == index`` of the library at ``url``, read-only (runs on a worker)."""
    from matching.cluster import readonly_url
    from matching.library.store import Library, arcs, embeddings, tracks
    from matching.ranking.catalog import build_catalog

    lib = Library(readonly_url(url))
    try:
        return build_catalog(lib.engine, tracks, arcs, embeddings, where=tracks.c.id % count == index)
    finally:
        lib.engine.dispose()


def rank_shard(
    shard: Catalog, arc: Any, k: int, weights: MatchWeights, fast: bool, candidates: int | None
) -> list[Match]:
    """One shard's top ``k`` (runs on the worker holding the shard)."""
    if len(shard) == 0:
        return []
    return list(rank(arc, shard, k=k, weights=weights, fast=fast, candidates=candidates))


class ShardedCatalog:
    """A catalogue whose shards live on the workers of a Dask cluster (see the module docstring)."""

    def __init__(self, client: Client, shards: list[Any], sizes: list[int]) -> None:
        self.client = client
        self.shards = shards  # futures of Catalogs, each pinned to one worker
        self.sizes = sizes

    def __len__(self) -> int:
        return int(sum(self.sizes))

    def __repr__(self) -> str:
        return f"ShardedCatalog({len(self.shards)} shards, {len(self)} tracks)"

    @staticmethod
    def _workers(client: Client, shards: int | None) -> tuple[list[str], int]:
        workers = sorted(client.scheduler_info()["workers"])
        if not workers:
            raise ParameterError("the Dask cluster has no workers to hold shards (received 0 workers)")
        n = len(workers) if shards is None else shards
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ParameterError(f"`shards` must be a whole number >= 1 (received {shards!r})")
        return workers, n

    @classmethod
    def scatter(cls, catalog: Catalog, client: Client, *, shards: int | None = None) -> ShardedCatalog:
        """Split ``catalog`` round-robin by row into ``shards`` (default: one per worker) and send them out."""
        workers, n = cls._workers(client, shards)
        futures, sizes = [], []
        for i in range(n):
            part = catalog.subset(np.arange(i, len(catalog), n))
            futures.append(client.scatter(part, workers=[workers[i % len(workers)]], broadcast=False, hash=False))
            sizes.append(len(part))
        return cls(client, futures, sizes)

    @classmethod
    def from_library(cls, url: str, client: Client, *, shards: int | None = None) -> ShardedCatalog:
        """Shards read by the workers themselves from the library database at ``url`` (path or URL)."""
        workers, n = cls._workers(client, shards)
        futures = [
            client.submit(load_shard, str(url), i, n, workers=[workers[i % len(workers)]], pure=False)
            for i in range(n)
        ]
        sizes = client.gather([client.submit(len, f, workers=[workers[i % len(workers)]], pure=False)
                               for i, f in enumerate(futures)])  # fmt: skip
        return cls(client, futures, [int(s) for s in sizes])

    def rank(
        self,
        clip: Any,
        k: int = 10,
        *,
        weights: MatchWeights | None = None,
        content_type: str | None = None,
        fast: bool = True,
        candidates: int | None = None,
    ) -> Ranking:
        """The ``k`` best tracks over all shards, as :func:`matching.rank` would give on the whole catalogue."""
        k = positive_count("k", k)  # as rank() reads it: numpy integers too, never a bool
        w = weights_for(content_type, weights)
        arc = clip_arc(clip)
        size = candidates if candidates is not None else shortlist_size(len(self))
        parts = [
            self.client.submit(rank_shard, shard, arc, k, w, fast, size, pure=False)
            for shard in self.shards
        ]
        merged = sorted((m for part in self.client.gather(parts) for m in part), key=lambda m: (-m.score, m.track_id))
        best = merged[:k]
        top = best[0].score if best else 0.0
        return Ranking(best, compose_instead=top < w.compose_threshold, threshold=w.compose_threshold, weights=w)

    def close(self) -> None:
        """Let the workers drop their shards."""
        self.client.cancel(self.shards)
        self.shards = []

