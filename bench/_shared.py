"""What the bench scripts share: loading a module by its file's location, ``tests/mediagen.py`` above all.

The scripts run as files (``.venv/bin/python bench/bench_cuts.py``), so Python puts this folder first on
``sys.path`` and ``from _shared import mediagen`` finds this module; nothing edits ``sys.path``. A test that
loads a bench script puts this folder on the path for that test only (``monkeypatch.syspath_prepend``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def load_module(name: str, path: Path) -> ModuleType:
    """The module in ``path``, run afresh and registered as ``sys.modules[name]`` before it runs: a
    dataclass in it looks its own module up there (``mediagen.Shot`` would fail without)."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def mediagen() -> ModuleType:
    """``tests/mediagen.py``, the synthetic media writer of the tests (clips with known cuts, audio files),
    loaded by file location so that ``tests/`` stays off ``sys.path``."""
    return load_module("mediagen", ROOT / "tests" / "mediagen.py")
