"""The bounded load test (``bench/bench_load.py``) as a slow test: 20 users at once on loopback,
each analysing a clip and rating; no recommendation or rating lost, duplicated or misattributed."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_load.py"


def test_twenty_concurrent_visits_lose_and_duplicate_nothing(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH.parent))  # as when run as a file: bench/ first, for bench/_shared.py
    bench = importlib.import_module("bench_load")
    visits, check, _ = bench.run_load(users=20, seconds=1.0, workdir=tmp_path)
    assert [v.error for v in visits if v.error] == []
    assert len({v.uid for v in visits}) == 20  # the server issued 20 different ids
    assert check == {"visits_ok": 20, "recommendations_lost": 0, "recommendations_duplicated": 0, "ratings_lost": 0,
                     "ratings_duplicated": 0, "ratings_wrong_value": 0, "ratings_from_strangers": 0}
