"""Fetch the real recordings of the music-emotion validation set (``bench/data/music_truth.csv``).

The packages are fetched with ``apt-get download``, unpacked in a temporary folder and only
the listed files are kept, under ``~/.cache/soundtrack/music_truth/<package>/`` (outside
git; :mod:`analysis.music.recordings`). The labels come from the games' own music
configuration (see the ``label_source`` column); nothing here is rendered or labelled by
this project. ``--manifest bench/data/music_other_games.csv`` fetches the recordings of eight other
games instead (a second test set; never the validation set's games).

    .venv/bin/python bench/fetch_music_truth.py [--debs DIR] [--manifest CSV]   # DIR: .deb files already downloaded

0ad-data is a 1.4 GB download that unpacks to 3.2 GB for a few minutes; the cache keeps ~0.4 GB.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from analysis.music.recordings import CACHE, fetch

MANIFEST = Path(__file__).parent / "data" / "music_truth.csv"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--debs", type=Path, default=None, help="folder of already downloaded .deb files to use first")
    ap.add_argument("--manifest", type=Path, default=MANIFEST,
                    help="CSV of recordings to fetch (default: the validation set)")
    args = ap.parse_args()
    tracks = fetch(args.manifest, args.debs)
    have = sum(t.local.is_file() for t in tracks)
    print(f"{have}/{len(tracks)} recordings in {CACHE}")


if __name__ == "__main__":
    main()
