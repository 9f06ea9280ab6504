"""Fetch the real recordings of the music-emotion validation set (``bench/data/music_truth.csv``).

Each row names a Debian package, its version and a file inside it (``archive.zip!member``
for a file inside a zip that the package ships, as 0 A.D. does). The packages are fetched
with ``apt-get download`` into a temporary folder, unpacked with ``dpkg-deb -x`` and only the
listed files are kept, under ``~/.cache/soundtrack/music_truth/<package>/`` (outside git).
The labels come from the games' own music configuration (see the ``label_source`` column);
nothing here is rendered or labelled by this project.

    .venv/bin/python bench/fetch_music_truth.py [--debs DIR]    # DIR: .deb files already downloaded

0ad-data is a 1.4 GB download that unpacks to 3.2 GB for a few minutes; the cache keeps ~0.4 GB.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

MANIFEST = Path(__file__).parent / "data" / "music_truth.csv"
CACHE = Path.home() / ".cache" / "soundtrack" / "music_truth"


@dataclass(frozen=True)
class TruthTrack:
    source: str
    package: str
    version: str
    path: str  # inside the package; "a.zip!member" for a zip member
    label: str
    valence: int  # +1 / -1, 0 = not labelled
    arousal: int  # +1 high / -1 low, 0 = not labelled
    label_source: str
    licence: str

    @property
    def local(self) -> Path:
        return CACHE / self.package / Path(self.path.split("!")[-1]).name


def read_manifest(path: Path = MANIFEST) -> list[TruthTrack]:
    with path.open(newline="") as fh:
        return [
            TruthTrack(**{**row, "valence": int(row["valence"]), "arousal": int(row["arousal"])})
            for row in csv.DictReader(fh)
        ]


def _download(package: str, version: str, into: Path, debs: Path | None) -> Path:
    if debs is not None:
        found = sorted(debs.glob(f"{package}_{version.split(':')[-1]}_*.deb"))
        if found:
            return found[0]
    subprocess.run(["apt-get", "download", f"{package}={version}"], cwd=into, check=True)
    return next(into.glob(f"{package}_*.deb"))


def fetch_package(package: str, version: str, tracks: list[TruthTrack], debs: Path | None = None) -> None:
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


def fetch_all(debs: Path | None = None) -> list[TruthTrack]:
    tracks = read_manifest()
    by_pkg: dict[tuple[str, str], list[TruthTrack]] = {}
    for t in tracks:
        by_pkg.setdefault((t.package, t.version), []).append(t)
    for (package, version), group in by_pkg.items():
        fetch_package(package, version, group, debs)
    return tracks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--debs", type=Path, default=None, help="folder of already downloaded .deb files to use first")
    args = ap.parse_args()
    tracks = fetch_all(args.debs)
    have = sum(t.local.is_file() for t in tracks)
    print(f"{have}/{len(tracks)} recordings in {CACHE}")


if __name__ == "__main__":
    main()
