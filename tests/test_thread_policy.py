"""`import analysis` makes thread pools sleep: passive OpenMP, one BLAS thread (unless the user chose)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = (
    "import json, os, analysis\n"
    "from threadpoolctl import threadpool_info\n"
    "blas = [i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas']\n"
    "print(json.dumps({'omp': os.environ.get('OMP_WAIT_POLICY'), 'blas': blas}))\n"
)
USER_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY")


def probe(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in USER_VARS}
    done = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True,
                          check=True, timeout=120)
    return json.loads(done.stdout)


def test_defaults_are_passive_openmp_and_one_blas_thread() -> None:
    got = probe()
    assert got["omp"] == "PASSIVE"
    assert got["blas"] and all(n == 1 for n in got["blas"])


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores to tell a user's choice from the default")
def test_a_users_choice_wins() -> None:
    got = probe(OPENBLAS_NUM_THREADS="2", OMP_WAIT_POLICY="ACTIVE")
    assert got["omp"] == "ACTIVE"
    assert got["blas"] == [2] * len(got["blas"]) and got["blas"]
