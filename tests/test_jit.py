"""librosa's numba kernels are built under one lock shared by every process (analysis/jit.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from analysis.jit import KERNEL_MODULES, KernelLockTimeout, kernel_lock, lock_for

ROOT = Path(__file__).resolve().parents[1]

#: Imports numba and scipy first, so that "ready" marks the moment the kernels start to build.
CHILD = """
import numba, scipy.signal
print("ready", flush=True)
from analysis.jit import load_librosa
load_librosa()
print("loaded", flush=True)
"""

#: What the product does with librosa, then which loaded librosa modules hold numba gufuncs.
PRODUCT = """
import json, sys
import numpy as np, soundfile as sf
from numba.np.ufunc.gufunc import GUFunc
from analysis.music.audio import analyze_audio
from analysis.music.emotion import music_emotion
from analysis.music.track import load_audio
from matching.fit import fit_track

y = np.sin(2 * np.pi * 220 * np.arange(3 * 22050) / 22050).astype(np.float32) * 0.3
sf.write(sys.argv[1], y, 22050)
analyze_audio(load_audio(sys.argv[1]), 22050)
music_emotion(y, 22050)
fit_track(sys.argv[1], sys.argv[2], start=0.5, duration=1.0, stretch=1.1, pitch_shift=1.0)
mods = [n for n, m in list(sys.modules.items()) if n.startswith("librosa") and m is not None
        and any(isinstance(v, GUFunc) for v in vars(m).values())]
print(json.dumps(sorted(mods)))
"""


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


def test_building_the_kernels_waits_for_the_lock(tmp_path, monkeypatch) -> None:
    """Held by another process, the lock keeps a fresh process from building (and writing) any
    kernel; released, the process builds them. Unlocked, its first kernel file appears about 4 s
    after "ready" on the 2-core machine."""
    cache = tmp_path / "numba"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(cache))  # the lock of the child's cache
    child = subprocess.Popen([sys.executable, "-c", CHILD], env=_env(NUMBA_CACHE_DIR=str(cache)),
                             stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        with kernel_lock() as held:
            assert held
            assert child.stdout.readline().strip() == "ready"
            time.sleep(8.0)
            assert child.poll() is None and not list(cache.rglob("*.nbi"))
        deadline = time.monotonic() + 120.0
        while not list(cache.rglob("*.nbi")) and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert list(cache.rglob("*.nbi")), "the child built nothing after the lock was released"
    finally:
        child.kill()
        child.wait()


def test_every_librosa_kernel_the_product_loads_is_built_under_the_lock(tmp_path) -> None:
    out = subprocess.run([sys.executable, "-c", PRODUCT, str(tmp_path / "a.wav"), str(tmp_path / "b.wav")],
                         env=_env(), capture_output=True, text=True, cwd=ROOT, timeout=600, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded, "the product loaded no librosa kernel at all: the check below would prove nothing"
    assert set(loaded) <= set(KERNEL_MODULES)


#: Takes the lock on argv[1] twice in one thread, then once from a second thread after the first let go.
REENTER = """
import sys, threading
from pathlib import Path
from analysis.jit import kernel_lock
path = Path(sys.argv[1])
with kernel_lock(path) as outer:
    with kernel_lock(path) as inner:
        print("nested", outer, inner, flush=True)
seen = []
def take():
    with kernel_lock(path) as held:
        seen.append(held)
t = threading.Thread(target=take)
t.start(); t.join(30)
print("thread", seen, flush=True)
"""

#: Holds the lock on argv[1] until killed.
HOLD = """
import sys, time
from pathlib import Path
from analysis.jit import kernel_lock
with kernel_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(300)
"""


def test_a_thread_holding_the_lock_may_take_it_again(tmp_path: Path) -> None:
    """Taking it again in the holding thread (a kernel built under it loads librosa, which takes it) had
    deadlocked on itself; the process is given 120 s, where it needs about two."""
    out = subprocess.run([sys.executable, "-c", REENTER, str(tmp_path / "k.lock")], env=_env(), cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.splitlines() == ["nested True True", "thread [True]"]


def test_waiting_for_another_process_ends_with_an_error_naming_it(tmp_path: Path) -> None:
    lock = tmp_path / "k.lock"
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], env=_env(), cwd=ROOT, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(KernelLockTimeout, match=rf"{lock}, held by process {child.pid}\b"), \
                kernel_lock(lock, timeout=1.0):
            pass
        child.kill()
        child.wait()
        with kernel_lock(lock, timeout=30.0) as held:  # its holder gone, the lock is free at once
            assert held
    finally:
        child.kill()
        child.wait()


def test_a_cache_of_its_own_is_built_without_waiting_for_other_caches_locks(tmp_path, monkeypatch) -> None:
    """The lock lay in the shared temporary folder: a process building into its own fresh cache waited for
    every other cache's build on the machine (other users' too). Now each cache has its lock beside it."""
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "other"))
    cache = tmp_path / "numba"
    with kernel_lock() as held:  # another cache's build under way
        assert held
        child = subprocess.run([sys.executable, "-c", CHILD], env=_env(NUMBA_CACHE_DIR=str(cache)), cwd=ROOT,
                               capture_output=True, text=True, timeout=300)
        assert child.stdout.split() == ["ready", "loaded"], child.stderr[-2000:]
        assert list(cache.rglob("*.nbi"))
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    assert not lock_for("librosa").is_relative_to(tempfile.gettempdir())  # per user, by default
