"""Read an arc JSON given on the command line (``compose --arc``), refusing every wrong shape in one sentence.

Accepted: an ``EmotionArc.to_json`` object (``times``, ``valence``, ``arousal``, optional
``emotions``), or a whole ``soundtrack analyze --json`` output (the arc under ``arc``,
with ``cuts`` and ``duration`` beside it). Anything else (a list, ``null``, strings
where numbers belong, ``null`` among the cuts, nesting deep enough to exhaust the
parser) is a :class:`ParameterError` naming what was wrong.
"""

from __future__ import annotations

import codecs
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.arc import EmotionArc
from analysis.errors import MediaError, ParameterError

#: Byte-order marks and the text they name (UTF-32's before UTF-16's, which begins it).
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
#: Largest arc file read (an arc of an hour at 0.1 s steps is well under 1 MB).
MAX_BYTES = 20_000_000


@dataclass(frozen=True)
class ArcInput:
    """What an arc file gives the composer."""

    arc: EmotionArc
    cuts: tuple[float, ...] | None  # None: the file carries none
    duration: float | None


def _what(value: Any) -> str:
    """A short description of a JSON value for a message (never a deep repr)."""
    if isinstance(value, list | dict):
        return f"a {'list' if isinstance(value, list) else 'object'} of {len(value)} item(s)"
    return repr(value)[:60]


def numbers(name: str, value: Any) -> list[float]:
    """``value`` as a list of finite numbers, or a :class:`ParameterError` naming ``name``."""
    if not isinstance(value, list):
        raise ParameterError(f"`--arc` field {name!r} must be a list of numbers (received {_what(value)})")
    for i, x in enumerate(value):
        if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
            raise ParameterError(f"`--arc` field {name!r} must hold only finite numbers (item {i} is {_what(x)})")
    return [float(x) for x in value]


def _load(path: Path) -> Any:
    if path.is_dir():
        raise MediaError(path, "is a folder, not an arc file")
    if not path.is_file():
        raise MediaError(path, "arc file not found")
    if path.stat().st_size == 0:
        raise MediaError(path, "is empty (0 bytes): not an arc file")
    if path.stat().st_size > MAX_BYTES:
        raise MediaError(path, f"is larger than {MAX_BYTES // 1_000_000} MB: not an arc file")
    raw = path.read_bytes()
    # UTF-8, or the text a byte-order mark names: an arc saved by Notepad as "UTF-8 with BOM", or by Windows
    # PowerShell's `soundtrack analyze clip.mp4 --json > arc.json` (UTF-16), was "not valid JSON" or "not a text file"
    codec = next((c for bom, c in _BOMS if raw.startswith(bom)), "utf-8")
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError:
        text = "\x00"
    if "\x00" in text:
        raise MediaError(path, "is not a text file (an arc JSON is UTF-8 text)")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ParameterError(f"`--arc` is not valid JSON ({err.msg} at line {err.lineno})") from None
    except RecursionError:
        raise ParameterError("`--arc` JSON is nested too deeply to be an arc") from None


def read_arc_file(path: Path) -> ArcInput:
    """The arc, cuts and duration in the JSON file at ``path`` (see module doc)."""
    data = _load(path)
    if not isinstance(data, dict):
        raise ParameterError(f"`--arc` must hold a JSON object with times, valence and arousal "
                             f"(received {_what(data)})")
    part = data["arc"] if "arc" in data and "times" not in data else data
    if not isinstance(part, dict):
        raise ParameterError(f"`--arc` field 'arc' must be an object (received {_what(part)})")
    missing = [k for k in ("times", "valence", "arousal") if k not in part]
    if missing:  # {"t": ..., "v": ..., "a": ...} was "field 'times' must be a list of numbers (received None)"
        held = ", ".join(repr(str(k))[:40] for k in list(part)[:8]) + (", ..." if len(part) > 8 else "")
        names = ", ".join(repr(k) for k in missing[:-1]) + (" or " if len(missing) > 1 else "") + repr(missing[-1])
        raise ParameterError(f"`--arc` has no {names} (an arc holds times, valence and arousal; this one holds "
                             f"{held or 'no field at all'})")
    fields = {k: numbers(k, part[k]) for k in ("times", "valence", "arousal")}
    if len({len(v) for v in fields.values()}) != 1 or not fields["times"]:
        raise ParameterError("`--arc` times, valence and arousal must be equally long and not empty (received "
                             + ", ".join(f"{len(v)}" for v in fields.values()) + ")")
    for axis in ("valence", "arousal"):  # the composer reads them on [-1, 1]; 50 would be read as +1
        outside = [x for x in fields[axis] if not -1.0 <= x <= 1.0]
        if outside:
            raise ParameterError(f"`--arc` {axis} must lie within -1 and 1 (received {outside[0]:g})")
    if min(fields["times"]) < 0:
        raise ParameterError(f"`--arc` times must not be negative (received {min(fields['times']):g})")
    times = fields["times"]
    back = next((i for i in range(1, len(times)) if times[i] <= times[i - 1]), None)
    if back is not None:  # was "does not describe an arc (`times` must be strictly increasing)", of 20,000 points
        raise ParameterError(f"`--arc` times must rise from each point to the next (item {back} is {times[back]:g}, "
                             f"after {times[back - 1]:g}): sort the points by time and give each time once")
    emotions = part.get("emotions") or {}
    if not isinstance(emotions, dict):
        raise ParameterError(f"`--arc` field 'emotions' must be an object (received {_what(emotions)})")
    emo = {str(k): numbers(f"emotions.{k}", v) for k, v in emotions.items()}
    try:
        arc = EmotionArc.from_dict({**fields, "emotions": emo})
    except (TypeError, ValueError) as err:
        raise ParameterError(f"`--arc` does not describe an arc ({err})") from None
    cuts = tuple(numbers("cuts", data["cuts"])) if "cuts" in data else None
    duration = data.get("duration")
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, int | float)
                                 or not math.isfinite(duration) or duration <= 0):
        raise ParameterError(f"`--arc` field 'duration' must be a positive number (received {_what(duration)})")
    return ArcInput(arc=arc, cuts=cuts, duration=None if duration is None else float(duration))


__all__ = ["ArcInput", "numbers", "read_arc_file"]
