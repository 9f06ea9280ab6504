"""What the results page shows about ranked tracks, in a creator's words.

* :func:`explore_one_slot`: the list is ranked by the learned blend's posterior mean; a
  Thompson draw of the blend may lift *one* track by *one* slot (marked, and said under the table), so the
  learner keeps learning while the scores and order a creator sees stay steady.
* :func:`table_rows`: fit 0-100 and its word first (they stay on screen at phone width),
  then the track, its mood in the used section, its tags, the section and the speed change.
* :func:`warped_section`: the used section of a track warped onto the clip's time axis
  along the DTW path, for the "why it fits" plot.
* :data:`STYLE_NAMES` / :data:`CONTENT_NAMES` / :func:`readable`: names for the dropdowns.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from analysis.arc import EmotionArc
from analysis.errors import SoundtrackError
from matching.ranking.weights import MatchWeights

if TYPE_CHECKING:
    from soundtrack.fitscale import FitScale

#: Readable names of composer styles and content types (anything else: underscores to spaces).
STYLE_NAMES = {"piano_solo": "Solo piano", "indian_raga": "Indian raga", "arabic_maqam": "Arabic maqam",
               "west_african": "West African"}
CONTENT_NAMES = {"general": "General", "music_video": "Music video", "courtroom": "Courtroom"}
TABLE_HEADERS = ["fit", "track", "mood", "tags", "section used", "speed"]
#: Beside the title of a track the list lifted one place (explore_one_slot); :func:`explore_note` says why
#: under the table. (" (trying: up one place)" in the title, beside a fit of 92 above 96, read as a bug.)
EXPLORE_MARK = " ↑"


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+!|~])")


def plain(text: str) -> str:
    """``text`` shown as typed inside the page's markdown (a title "a_b_c" read as italics)."""
    return _MARKDOWN.sub(r"\\\1", text)


def readable(name: str, names: dict[str, str]) -> str:
    return names.get(name, name.replace("_", " ").capitalize())


def explore_one_slot(matches: Sequence[Any], sampled: MatchWeights) -> tuple[list[Any], int | None]:
    """``matches`` (best first under the posterior mean) with at most one track lifted one slot.

    The highest track that the sampled blend scores above its upper neighbour swaps with it;
    returns the new order and the lifted track's new index (None: nothing moved).
    """
    w_dtw, w_emb = sampled.blend
    drawn = [w_dtw * m.dtw_score + w_emb * m.embedding_score for m in matches]
    for i in range(1, len(matches)):
        if drawn[i] > drawn[i - 1]:
            out = list(matches)
            out[i - 1], out[i] = out[i], out[i - 1]
            return out, i - 1
    return list(matches), None


#: The mood word of each region of the valence-arousal plane: rows valence (pleasant, neither, unpleasant),
#: columns arousal (calm, moderate, energetic).
MOOD_GRID = (("serene", "warm", "joyful"), ("calm", "neutral", "energetic"), ("sad", "sombre", "tense"))
#: How far from 0 a mean valence or arousal must lie to count as that side. Soft and loud renders of one
#: chorale read -0.14 and +0.18 arousal, a major chorale and its minor copy +0.68 and -0.36 valence: 0.15
#: tells each pair apart. (The nearest of the six emotions, with "moderate" for arousal within 0.25 of 0,
#: called 17 of the 26 demo tracks "neutral" or "moderate", and a calm, pleasant point "neutral" in 82 % of
#: that quadrant, where none of the six lies.)
MOOD_EDGE = 0.15


def mood(va: np.ndarray) -> str:
    """The word of :data:`MOOD_GRID` for the mean valence and arousal of an ``(m, 2)`` VA stretch."""
    if len(va) == 0:
        return "?"
    v, a = (float(x) for x in np.mean(np.asarray(va, dtype=float), axis=0))
    row = 0 if v > MOOD_EDGE else 2 if v < -MOOD_EDGE else 1
    col = 2 if a > MOOD_EDGE else 0 if a < -MOOD_EDGE else 1
    return MOOD_GRID[row][col]


def speed(stretch: float) -> str:
    pct = round((1.0 / stretch - 1.0) * 100) if stretch > 0 else 0
    return "as recorded" if pct == 0 else f"{abs(pct)} % {'faster' if pct > 0 else 'slower'}"


@dataclass(frozen=True)
class Row:
    """The facts of one ranked track the table shows."""

    fit: int
    word: str
    title: str
    mood: str
    tags: Sequence[str]
    start: float
    end: float
    stretch: float
    exploring: bool = False
    #: Seconds of the clip the track has music for, when it runs out first even slowed down (else None).
    runs_out: float | None = None


def table_rows(rows: Sequence[Row]) -> tuple[list[list[Any]], list[str]]:
    """The table and the track dropdown's choices ("1. title")."""
    table, choices = [], []
    for i, r in enumerate(rows):
        name = f"{i + 1}. {r.title}"
        choices.append(name)
        shown = [t for t in r.tags if ":" not in t]  # what the track is like; where it came from (corpus:...) is
        # the Library tab's, and here pushed the section and speed columns off the page
        table.append([f"{r.fit} {r.word}", name + (EXPLORE_MARK if r.exploring else ""), r.mood,
                      ", ".join(shown) or "-", f"{r.start:.1f}-{r.end:.1f} s" + _ends(r), speed(r.stretch)])
    return table, choices


def _ends(r: Row) -> str:
    return "" if r.runs_out is None else f" (music for the clip's first {r.runs_out:.0f} s)"


def table_note(rows: Sequence[Row]) -> str:
    """The lines under the table: the lifted track (:func:`explore_note`) and the tracks that run out before
    the clip ends. (A 3-minute clip's preview had 24 s of music and 156 s of silence, the table saying only
    "0.0-19.5 s, 20 % slower".)"""
    short = [f"{plain(f'{i + 1}. {r.title}')} (after {r.runs_out:.0f} s)" for i, r in enumerate(rows)
             if r.runs_out is not None]
    note = (f"Shorter than the clip, even slowed down, so their previews go silent: {', '.join(short)}."
            if short else "")
    return "\n\n".join(n for n in (explore_note(rows), note) if n)


def explore_note(rows: Sequence[Row]) -> str:
    """The line under the table on the lifted track (:data:`EXPLORE_MARK`), or "" when none was lifted."""
    lifted = next((i for i, r in enumerate(rows) if r.exploring), None)
    if lifted is None:
        return ""
    name = plain(f"{lifted + 1}. {rows[lifted].title}")
    return (f"{EXPLORE_MARK.strip()} **{name}** is shown one place higher than its fit puts it: now and then the "
            "list tries a track a place up, and your ratings teach it which fits better.")


def warped_section(clip_va: np.ndarray, track_va: np.ndarray, *, hop: float, start: float, end: float,
                   weights: MatchWeights) -> np.ndarray:
    """``(n, 2)``: the track's section ``[start, end)`` s warped onto the clip's ``n`` steps by DTW.

    The section is resampled to the clip's length (as fitting stretches the audio), then each
    clip step takes the mean of the section steps the DTW path pairs with it, in the same
    channels and band as :func:`matching.ranking.dtw.arc_distance` scores.
    """
    from dtaidistance import dtw_ndim

    from matching.ranking.dtw import band, features, resample_va

    q = np.asarray(clip_va, dtype=np.float64)
    n = q.shape[0]
    section = resample_va(np.asarray(track_va, dtype=np.float64)[steps(start, end, hop)], n)
    if n < 2:
        return section
    path = dtw_ndim.warping_path(features(q, hop, weights), features(section, hop, weights),
                                 window=band(n, weights))
    total, count = np.zeros((n, 2)), np.zeros(n)
    for i, j in path:
        total[i] += section[j]
        count[i] += 1
    return total / np.maximum(count, 1)[:, None]


def steps(start: float, end: float, hop: float) -> slice:
    """The steps of a track's arc (sampled every ``hop`` s) inside the section ``[start, end)`` s."""
    a = round(start / hop)
    return slice(a, max(a + 1, round(end / hop)))


def fit_sentence(word: str, fits: bool, title: str, fit: int) -> str:
    """The summary's verdict on the best track."""
    if not fits:
        return (f"**no track fits well** (the best, {title}, scores lower than the library does for nine "
                "clips in ten): try **Compose instead** below")
    return f"best: **{title}**, a **{word}** fit" + ("" if fit == 100 else f" ({fit}/100 against the library)")


def score_title(name: str) -> str:
    """A piece's title from the clip's file name: "beach-run_final.mp4" -> "Score for beach run final"."""
    words = " ".join(Path(name).stem.replace("_", " ").replace("-", " ").split()) if name else ""
    return f"Score for {words}" if words else "Score"


#: Why a source was off, as the page puts it (the page reads no file beside an upload).
PAGE_REASONS = {"subtitles": "no subtitle file uploaded"}  # in place of the source's NO_SUBTITLES only


def main_mood(arc: EmotionArc) -> str:
    """The emotion most of ``arc``'s steps read as (:meth:`EmotionArc.dominant_emotion`); between words
    that hold as many steps, the one with the higher summed probability (not whichever a set yields first).
    Where that is "neutral" but the arc's mean lies in another region of :data:`MOOD_GRID`, the grid's word:
    none of the six emotions lies in the calm, pleasant quadrant, so a bright, still clip read "mostly
    neutral" beside tracks the table calls "serene"."""
    counts = Counter(arc.dominant_emotion())
    if not counts:
        return "?"
    word = max(counts, key=lambda e: (counts[e], float(np.sum(arc.emotions[e]))))
    return mood(arc.va()) if word == "neutral" else word


def _page_reasons(off: dict[str, str]) -> dict[str, str]:
    """The page's words for a switched-off source, where it has its own: for the subtitles only when no file
    was uploaded (an uploaded file that was not read keeps its reason, e.g. that it is not in English)."""
    from analysis.sources.subtitles import NO_SUBTITLES

    return PAGE_REASONS if off.get("subtitles") == NO_SUBTITLES else {}


def summary(clip: Any, verdict: str) -> str:
    """The page's one paragraph on an analysed clip: length, cuts, mood, the verdict, what it read from."""
    n_cuts = len(clip.cuts)
    return (
        f"{clip.duration:.1f} s, {n_cuts} cut{'s' * (n_cuts != 1)}, mostly "
        f"{main_mood(clip.arc)}; {verdict}. Read from: {', '.join(clip.sources_used) or 'nothing'}"
        + clip.silent_sources(_page_reasons(clip.sources_off)) + "."
    )


def ranked_rows(library: Any, cat: Any, clip: Any, matches: Sequence[Any], everyone: Sequence[Any],
                scale: FitScale, lifted: int | None, hop: float) -> list[Row]:
    """The table's facts: fit percentile among every scored track (unscored ones count as lower), word, mood
    in the used section (``hop``: the arc's step when the clip's arc has none), tags."""
    from soundtrack.fitscale import percentiles

    scores = [m.score for m in everyone] + [-1.0] * (len(cat) - len(everyone))
    fits = percentiles([m.score for m in matches], scores)
    rows = []
    for i, (m, fit) in enumerate(zip(matches, fits, strict=True)):
        record = _record(library, m.track_id)  # once a row: its tags and its length
        rows.append(Row(fit, scale.word(m.score), m.title or f"track {m.track_id}", _mood(cat, clip, m, hop),
                        tuple(record.tags) if record is not None else (), m.start, m.end, m.stretch,
                        exploring=i == lifted, runs_out=_runs_out(record, clip.duration, m)))
    return rows


def _record(library: Any, track_id: int) -> Any:
    """The track's catalogue record, or None when it left the library meanwhile."""
    try:
        return library.get(track_id)
    except SoundtrackError:
        return None


def _runs_out(record: Any, clip_s: float, m: Any) -> float | None:
    """Seconds of a ``clip_s`` clip the track has music for when fitted (from the section's start to the
    track's end, slowed down as the fit says; matching.fit.fit_track), or None when that is all of it."""
    try:
        covered = (float(record.duration) - m.start) * m.stretch
    except (AttributeError, TypeError):  # no record, or no length in it
        return None
    return covered if clip_s - covered > 0.5 else None


def _mood(cat: Any, clip: Any, m: Any, hop: float) -> str:
    from matching.ranking.ranker import track_va_at

    rows = np.flatnonzero(cat.ids == m.track_id)
    if not rows.size:
        return "?"
    hop = clip.arc.hop or hop
    va = track_va_at(cat, int(rows[0]), hop)
    return mood(va[steps(m.start, m.end, hop)])
