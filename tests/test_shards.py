"""Ranking over shards held by a 2-worker Dask LocalCluster gives the one-process top 10."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from analysis.arc import EmotionArc
from matching.library.store import Library
from matching.ranking.catalog import Catalog
from matching.ranking.ranker import rank
from matching.shards import ShardedCatalog

distributed = pytest.importorskip("distributed")
HOP = 1.0


def walks(n: int, seed: int) -> list[EmotionArc]:
    """Smoothed random-walk arcs of 30-120 steps, like a real library's slow mood changes."""
    rng = np.random.default_rng(seed)
    out = []
    for m in rng.integers(30, 121, n):
        x = np.cumsum(rng.normal(0, 0.08, (m, 2)), axis=0)
        x = np.clip(x - x.mean(axis=0) + rng.uniform(-0.5, 0.5, 2), -1, 1)
        out.append(EmotionArc.from_va((np.arange(m) + 0.5) * HOP, x[:, 0], x[:, 1]))
    return out


def section(arc: EmotionArc, start: int, length: int) -> EmotionArc:
    va = arc.va()[start : start + length]
    return EmotionArc.from_va((np.arange(length) + 0.5) * HOP, va[:, 0], va[:, 1])


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       scheduler_port=0, dashboard_address=None)  # fmt: skip
    cl = distributed.Client(cluster, set_as_default=False)
    try:
        yield cl
    finally:
        cl.close()
        cluster.close()


@pytest.fixture(scope="module")
def arcs() -> list[EmotionArc]:
    return walks(800, seed=3)


def queries(arcs: list[EmotionArc]) -> list[EmotionArc]:
    return [section(arcs[7], 5, 20), section(arcs[250], 0, 28), walks(1, seed=99)[0]]


def test_scattered_shards_give_the_one_process_top_10(client, arcs) -> None:
    cat = Catalog.from_arcs(arcs)
    shards = ShardedCatalog.scatter(cat, client)
    assert shards.sizes == [400, 400] and len(shards) == 800
    workers = client.who_has(shards.shards)
    assert len({w for ws in workers.values() for w in ws}) == 2  # one shard on each worker
    for j, clip in enumerate(queries(arcs)):
        for fast in (True, False) if j == 0 else (True,):
            one = rank(clip, cat, k=10, fast=fast)
            many = shards.rank(clip, k=10, fast=fast)
            assert [m.track_id for m in many] == [m.track_id for m in one]
            assert [m.score for m in many] == pytest.approx([m.score for m in one], abs=1e-12)
            assert many.compose_instead == one.compose_instead
    assert shards.rank(queries(arcs)[0], k=1)[0].track_id == 8  # the clip's own track (ids start at 1)
    shards.close()


@dataclass(frozen=True)
class Stored:
    arc: EmotionArc
    duration: float
    kind: str = "audio"


def test_workers_read_their_shards_from_the_database(client, arcs, db_url, tmp_path) -> None:
    lib = Library(db_url)
    for i, arc in enumerate(arcs[:300]):
        lib.store(tmp_path / f"t{i}.wav", Stored(arc, arc.duration), checksum=f"{i:064x}")
    shards = ShardedCatalog.from_library(db_url, client, shards=3)
    assert sorted(shards.sizes) == [100, 100, 100]
    for clip in queries(arcs)[:2]:
        one = rank(clip, lib, k=10)
        assert [m.track_id for m in shards.rank(clip, k=10)] == [m.track_id for m in one]
    shards.close()
