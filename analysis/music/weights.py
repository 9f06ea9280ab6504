"""Reading a music reader's shipped weights (an ``.npz``), checked against what the code expects."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from analysis.errors import ModelError


def read_weights(
    path: str | Path, names_key: str, names: Sequence[str], *, what: str, remedy: str
) -> dict[str, np.ndarray]:
    """Every array of ``path`` but ``names_key``, once that array equals ``names`` (the features a
    model reads or the tags it writes): a :class:`ModelError` naming ``what`` and ``remedy`` when
    the file is missing or was made for other names."""
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"{what} {p} is missing ({remedy})")
    with np.load(p, allow_pickle=False) as data:
        if names_key not in data.files or tuple(str(s) for s in data[names_key]) != tuple(names):
            raise ModelError(f"{what} {p} was made for other {names_key} than this code reads")
        return {k: data[k] for k in data.files if k != names_key}
