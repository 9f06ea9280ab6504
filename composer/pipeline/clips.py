"""The clips a batch is given: folders searched by suffix, each clip once, none from the batch's own outputs."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from analysis.errors import MediaError, ParameterError, as_path

#: File suffixes taken as clips when a folder is given.
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv",
                            ".mts", ".m2ts", ".mxf", ".3gp", ".flv", ".ogv", ".vob", ".dv"})


def find_clips(folder: str | Path, *, recursive: bool = True) -> list[Path]:
    """Video files under ``folder`` (by suffix), sorted, hidden files left out.

    A broken link with a clip's name is kept (its clip is then recorded as an error saying where the link
    points): a folder of links to clips on a volume that went away was scored as fewer clips, without a word.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MediaError(folder, "is not a folder of clips")
    pattern = "**/*" if recursive else "*"
    return sorted(
        p for p in folder.glob(pattern)
        if (p.is_file() or (p.is_symlink() and not p.exists()))
        and p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith(".")
    )


def clips_of(paths: str | Path | Iterable[str | Path], recursive: bool, out: Path) -> list[Path]:
    """The clips ``paths`` name (folders searched), absolute, as workers elsewhere (a Dask worker started in
    another folder) read them; none under the output folder ``out`` (a batch does not score its own outputs).
    No clip at all is an error, said before any output folder or manifest is made (a wrong folder, most
    likely)."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    try:
        given = [as_path(p, "paths").absolute() for p in paths]  # read once: may be an iterator
    except TypeError:
        raise ParameterError(f"`paths` must be a clip, a folder or an iterable of them (received {paths!r})") from None
    # A clip named twice (a folder and a file in it, overlapping folders, `..`) is one clip, not a duplicate.
    # Its folder is resolved, not its name: a link to a clip under another name stays a duplicate, with a row.
    named: dict[Path, Path] = {}
    for clip in _expand(given, recursive):
        named.setdefault(clip.parent.resolve() / clip.name, clip)
    clips = [c for c in named.values() if not _is_under(c, out.resolve())]
    if not clips:
        looked = f"looked for {', '.join(sorted(VIDEO_SUFFIXES))}"
        if len(given) == 1:
            raise MediaError(given[0], f"holds no video clips ({looked})")
        raise ParameterError(f"no video clips in {', '.join(map(str, given)) or 'no paths'} ({looked})")
    return clips


def _is_under(path: Path, folder: Path) -> bool:
    """Whether ``path`` leads into ``folder``; a link that loops leads nowhere (its clip is an error)."""
    try:
        return path.resolve().is_relative_to(folder)
    except (RuntimeError, OSError):  # Python < 3.13 raises RuntimeError on a loop
        return False


def _expand(paths: list[Path], recursive: bool) -> list[Path]:
    """Each path, a folder as the clips in it."""
    out: list[Path] = []
    for p in paths:
        out.extend(find_clips(p, recursive=recursive) if p.is_dir() else [p])
    return out
