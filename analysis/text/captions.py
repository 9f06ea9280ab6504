"""SubRip (.srt), WebVTT (.vtt) and ASS/SSA (.ass, .ssa) subtitle files -> timed cues, with line-numbered errors.

Only what the analysis needs is kept: each cue's start, end and plain text (formatting
tags such as ``<i>``, ``<v Speaker>`` and ``{\\an8}`` are stripped). A malformed file
raises :class:`MediaError` naming the file and the line, e.g.
``subs.srt: line 7: timing line '00:00:0x,000 --> 00:00:04,000' is malformed (expected
'HH:MM:SS,mmm --> HH:MM:SS,mmm')``.
"""

from __future__ import annotations

import codecs
import re
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from analysis.errors import MediaError, ParameterError
from analysis.media.ffmpeg import ffmpeg_binary, first_complaint

Kind = Literal["srt", "vtt"]

_TS = r"(?:(\d{1,3}):)?(\d{1,2}):(\d{2})[,.](\d{1,3})"
_TIMING = re.compile(rf"^\s*{_TS}\s*-->\s*{_TS}(?:\s+.*)?$")
_TAG = re.compile(r"<[^>]*>|\{\\[^}]*\}")
#: Largest subtitle file read (bytes): a feature film's SRT is well under 1 MB.
MAX_BYTES = 20 * 1024 * 1024
#: Seconds FFmpeg may take to turn an ASS/SSA file into SubRip text.
ASS_TIMEOUT = 120.0


@dataclass(frozen=True)
class Cue:
    """One subtitle: shown from ``start`` to ``end`` seconds; ``line`` is its timing line (1-based)."""

    start: float
    end: float
    text: str
    line: int


@dataclass(frozen=True)
class Subtitles:
    """The cues of one file, sorted by start time."""

    path: Path
    kind: Kind
    cues: tuple[Cue, ...]

    @property
    def end(self) -> float:
        return max((c.end for c in self.cues), default=0.0)


def _seconds(groups: tuple[str | None, ...]) -> float:
    h, m, s, frac = groups
    if int(m) > 59 or int(s) > 59:
        raise ValueError("minutes and seconds must be below 60")
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(frac.ljust(3, "0")) / 1000.0


def _clean(lines: list[str]) -> str:
    text = " ".join(_TAG.sub("", ln).strip() for ln in lines)
    return re.sub(r"\s+", " ", text).strip()


def parse_subtitles(text: str, *, kind: Kind, name: str | Path = "<subtitles>") -> Subtitles:
    """Parse subtitle ``text`` of ``kind`` (``"srt"`` or ``"vtt"``); ``name`` is used in errors."""
    if kind not in ("srt", "vtt"):
        raise ParameterError(f"`kind` must be 'srt' or 'vtt' (received {kind!r})")
    path = Path(name)
    expected = "'HH:MM:SS,mmm --> HH:MM:SS,mmm'" if kind == "srt" else "'[HH:]MM:SS.mmm --> [HH:]MM:SS.mmm'"
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    i = 0
    if kind == "vtt":
        if not lines[0].lstrip("\ufeff").startswith("WEBVTT"):
            raise MediaError(path, f"line 1: a WebVTT file must start with 'WEBVTT' (received {lines[0][:40]!r})")
        i = 1
        # Header lines up to the first blank line, or up to a first cue written right under "WEBVTT".
        while i < len(lines) and lines[i].strip() and "-->" not in lines[i]:
            i += 1
    cues: list[Cue] = []
    n = len(lines)
    while i < n:
        if not lines[i].strip():
            i += 1
            continue
        # A block: [identifier or SRT counter] timing-line text-lines... blank
        block_start = i
        block: list[str] = []
        while i < n and lines[i].strip():
            if "-->" in lines[i] and any("-->" in b for b in block):
                # The next cue begins without the blank line before it (hand-edited files): its number goes with it.
                if block[-1].strip().isdigit() and "-->" not in block[-1]:
                    block.pop()
                    i -= 1
                break
            block.append(lines[i])
            i += 1
        head = block[0].strip()
        if kind == "vtt" and (head.startswith(("NOTE", "STYLE", "REGION")) and "-->" not in head):
            continue
        t_idx = 0 if "-->" in block[0] else 1
        if t_idx == 1 and kind == "srt" and not head.isdigit():
            raise MediaError(path, f"line {block_start + 1}: expected a cue number or a timing line, "
                                   f"received {head[:60]!r}")
        if t_idx >= len(block) or "-->" not in block[t_idx]:
            where = block_start + 1 + min(t_idx, len(block) - 1)
            got = block[t_idx] if t_idx < len(block) else "(end of block)"
            raise MediaError(path, f"line {where}: expected a timing line {expected}, received {got.strip()[:60]!r}")
        line_no = block_start + 1 + t_idx
        m = _TIMING.match(block[t_idx])
        if m is None:
            raise MediaError(path, f"line {line_no}: timing line {block[t_idx].strip()[:60]!r} is malformed "
                                   f"(expected {expected})")
        try:
            start, end = _seconds(m.groups()[:4]), _seconds(m.groups()[4:])
        except ValueError as err:
            bad = block[t_idx].strip()[:60]
            raise MediaError(path, f"line {line_no}: timing line {bad!r} is invalid ({err})") from None
        if end < start:
            raise MediaError(path, f"line {line_no}: cue ends before it starts ({start:.3f} s -> {end:.3f} s)")
        cues.append(Cue(start=start, end=end, text=_clean(block[t_idx + 1 :]), line=line_no))
    cues.sort(key=lambda c: (c.start, c.line))
    return Subtitles(path=path, kind=kind, cues=tuple(cues))


def _utf16_without_mark(head: bytes) -> str | None:
    """``"utf-16-le"`` or ``"utf-16-be"`` when ``head`` is UTF-16 text written without a byte-order mark
    (the NUL high byte of each Latin character on one side of every pair), else None."""
    pairs = len(head) // 2
    if pairs < 8:
        return None
    even, odd = head[0 : 2 * pairs : 2].count(0), head[1 : 2 * pairs : 2].count(0)
    if odd >= 0.5 * pairs and even <= 0.02 * pairs:
        return "utf-16-le"
    if even >= 0.5 * pairs and odd <= 0.02 * pairs:
        return "utf-16-be"
    return None


def _what_else(text: str) -> str | None:
    """Why decoded ``text`` is plainly not subtitles (a web page saved in their place, a word processor's
    document, binary data), in words; None when it may be."""
    head = text[:4096].lstrip("\ufeff \t\r\n").lower()
    if head.startswith(("<!doctype html", "<html", "<head", "<?xml")):
        return "is a web page or XML document, not SRT/VTT subtitles (a subtitle site may have sent a page instead)"
    if head.startswith("{\\rtf"):
        return "is a rich-text (RTF) document, not plain-text subtitles: save it as plain text"
    odd = sum(1 for ch in head if (ch < " " and ch not in "\t\n\r\f") or ch in "\ufffd\x7f")
    if head and odd > 0.05 * len(head):
        return "is not a text file (binary data), so not subtitles"
    return None


def read_subtitles(path: str | Path) -> Subtitles:
    """Read an ``.srt``, ``.vtt``, ``.ass`` or ``.ssa`` file (kind from the suffix, or sniffed from a
    ``WEBVTT`` header); ASS/SSA (what Aegisub and fansubs write) is turned into SubRip text by FFmpeg."""
    path = Path(path)
    if not path.exists():
        raise MediaError(path, "subtitle file not found")
    if not path.is_file():
        raise MediaError(path, "is not a file")
    size = path.stat().st_size
    if size == 0:
        raise MediaError(path, "subtitle file is empty (0 bytes)")
    if size > MAX_BYTES:
        raise MediaError(path, f"is {size / 2**20:.0f} MB, larger than the {MAX_BYTES // 2**20} MB a subtitle file "
                               "may be (a feature film's subtitles take under 1 MB): is it the right file?")
    raw = path.read_bytes()
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):  # Windows Notepad's "Unicode"
        text = raw.decode("utf-16", errors="replace")
    elif (utf16 := _utf16_without_mark(raw[:4096])) is not None:
        text = raw.decode(utf16, errors="replace")
    elif b"\x00" in raw[:4096]:
        raise MediaError(path, "is not a text file (found NUL bytes), so not subtitles")
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", errors="replace")  # old SRT files are often Windows-1252
    not_subtitles = _what_else(text)
    if not_subtitles:
        raise MediaError(path, not_subtitles)
    suffix = path.suffix.lower()
    if suffix in (".ass", ".ssa"):
        return _ass_as_srt(path, text)
    if suffix == ".vtt" or text.lstrip().startswith("WEBVTT"):
        kind: Kind = "vtt"
    elif suffix == ".srt":
        kind = "srt"
    else:
        raise MediaError(path, f"unknown subtitle format {suffix or '(no suffix)'!r} (expected .srt, .vtt or .ass)")
    return parse_subtitles(text, kind=kind, name=path)


def _ass_as_srt(path: Path, text: str) -> Subtitles:
    """The ASS/SSA ``text`` of ``path`` as SubRip text from FFmpeg, parsed. The text goes to FFmpeg as
    UTF-8 on a pipe, whatever the file's encoding: FFmpeg drops every line of a Latin-1 file that is not
    plain ASCII ("Invalid UTF-8 in decoded subtitles text")."""
    cmd = [ffmpeg_binary(path, "read"), "-nostdin", "-v", "error", "-f", "ass", "-i", "pipe:0", "-f", "srt", "pipe:1"]
    try:
        proc = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, timeout=ASS_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise MediaError(path, f"could not be read as ASS/SSA subtitles in {ASS_TIMEOUT:.0f} s") from None
    srt = proc.stdout.decode("utf-8", errors="replace")
    if proc.returncode != 0 or not srt.strip():
        why = first_complaint(proc.stderr, default="it holds no dialogue line")
        raise MediaError(path, f"could not be read as ASS/SSA subtitles ({why})")
    subs = parse_subtitles(srt, kind="srt", name=path)
    return Subtitles(path=path, kind="srt", cues=tuple(replace(c, line=0) for c in subs.cues))
