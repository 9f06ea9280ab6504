"""Real recordings that Debian packages ship, listed in a CSV manifest with the mood their game assigns.

Two manifests use this format: ``bench/data/music_truth.csv`` (the validation set; nothing is
fitted on it) and ``bench/data/music_other_games.csv`` (recordings of eight other games: a
second test set, and real training data that ``python -m analysis.music.train_emotion --real``
can add). Each row names a
Debian package, its exact version and a file inside it (``archive.zip!member`` for a file
inside a zip the package ships, as 0 A.D. and UFO: Alien Invasion do), the game's own label
and where the game assigns it, and the licence. :func:`fetch` downloads the packages with
``apt-get download``, unpacks each in a temporary folder and keeps only the listed files,
under ``~/.cache/soundtrack/music_truth/<package>/`` (outside git).
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CACHE = Path.home() / ".cache" / "soundtrack" / "music_truth"


@dataclass(frozen=True)
class Recording:
    """One listed recording: where it comes from, the game's label, and that label as valence/arousal signs."""

    source: str
    package: str
    version: str
    path: str  # inside the package; "a.zip!member" for a zip member
    label: str
    valence: int  # +1 / -1, 0 = neutral or not labelled
    arousal: int  # +1 high / -1 low, 0 = not labelled
    label_source: str
    licence: str

    @property
    def local(self) -> Path:
        return CACHE / self.package / Path(self.path.split("!")[-1]).name


def read_manifest(path: Path) -> list[Recording]:
    with path.open(newline="") as fh:
        return [
            Recording(**{**row, "valence": int(row["valence"]), "arousal": int(row["arousal"])})
            for row in csv.DictReader(fh)
        ]


def _download(package: str, version: str, into: Path, debs: Path | None) -> Path:
    if debs is not None:
        found = sorted(debs.glob(f"{package}_{version.split(':')[-1]}_*.deb"))
        if found:
            return found[0]
    subprocess.run(["apt-get", "download", f"{package}={version}"], cwd=into, check=True)
    return next(into.glob(f"{package}_*.deb"))


def fetch_package(package: str, version: str, tracks: list[Recording], debs: Path | None = None) -> None:
    """Download one package, unpack it in a temporary folder and copy the listed files into the cache."""
    missing = [t for t in tracks if not t.local.is_file()]
    if not missing:
        return
    with tempfile.TemporaryDirectory(prefix=f"truth-{package}-") as tmp:
        root = Path(tmp)
        deb = _download(package, version, root, debs)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root / "x")], check=True)
        (CACHE / package).mkdir(parents=True, exist_ok=True)
        for t in missing:
            outer, _, member = t.path.partition("!")
            if member:
                with zipfile.ZipFile(root / "x" / outer) as z, z.open(member) as src, t.local.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
            else:
                shutil.copyfile(root / "x" / outer, t.local)
    print(f"{package} {version}: {len(missing)} files -> {CACHE / package}")


def fetch(manifest: Path, debs: Path | None = None) -> list[Recording]:
    """Fetch every recording of ``manifest`` that is not cached yet; returns the manifest's rows."""
    tracks = read_manifest(manifest)
    by_pkg: dict[tuple[str, str], list[Recording]] = {}
    for t in tracks:
        by_pkg.setdefault((t.package, t.version), []).append(t)
    for (package, version), group in by_pkg.items():
        fetch_package(package, version, group, debs)
    return tracks


def pairwise_accuracy(pred: np.ndarray, label: np.ndarray) -> tuple[float, int]:
    """Share of pairs with different non-zero labels that ``pred`` orders the same way (ties count
    half), and the number of such pairs (``nan`` accuracy when there are none)."""
    pred, label = np.asarray(pred, float), np.asarray(label, float)
    keep = label != 0
    p, lab = pred[keep], label[keep]
    dl = np.sign(lab[:, None] - lab[None, :])
    dp = np.sign(p[:, None] - p[None, :])
    upper = np.triu(np.ones_like(dl, dtype=bool), 1) & (dl != 0)
    n = int(upper.sum())
    if n == 0:
        return float("nan"), 0
    agree = np.where(dp[upper] == 0, 0.5, (dp[upper] == dl[upper]).astype(float))
    return float(agree.mean()), n
