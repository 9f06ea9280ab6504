"""Plot a clip's valence and arousal over time with the cuts marked (matplotlib, Agg).

A strip below the curves shows the dominant emotion per section: the arc is cut into
runs of the same most-probable emotion and each run is coloured and labelled. A chosen
track's used section can be drawn over the clip's arc (:class:`ArcOverlay`), with the
section marked on the track's own timeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analysis.arc import EmotionArc

#: Text and frame colour: mid-grey reads on white and on Gradio's dark background.
INK = "#8a8f98"
VALENCE = "#3b8fd9"
AROUSAL = "#e0474c"

_COLOURS = {
    "joy": "#f2b134",
    "sadness": "#4c72b0",
    "anger": "#c44e52",
    "fear": "#8172b2",
    "surprise": "#55a868",
    "neutral": "#b0b0b0",
}


def sections(arc: EmotionArc) -> list[tuple[float, float, str]]:
    """(start, end, emotion) runs of the dominant emotion, in seconds."""
    if not len(arc):
        return []
    dom = arc.dominant_emotion()
    half = arc.hop / 2 if len(arc) > 1 else arc.times[0]
    out: list[tuple[float, float, str]] = []
    start = 0
    for i in range(1, len(dom) + 1):
        if i == len(dom) or dom[i] != dom[start]:
            out.append((float(arc.times[start] - half), float(arc.times[i - 1] + half), dom[start]))
            start = i
    return out


@dataclass(frozen=True)
class ArcOverlay:
    """A track's used section drawn over a clip's arc: its VA on the clip's time steps and where it sits."""

    label: str
    valence: np.ndarray  # on the clip's arc.times (already warped onto the clip)
    arousal: np.ndarray
    track_duration: float
    start: float
    end: float


def _style(ax: Any) -> None:
    """Mid-grey text and frames: readable on the light and the dark page (the figure is transparent)."""
    ax.tick_params(colors=INK, labelsize=9)
    for side in ax.spines.values():
        side.set_color(INK)
    ax.xaxis.label.set_color(INK)
    ax.yaxis.label.set_color(INK)
    ax.title.set_color(INK)


def plot_arc(
    arc: EmotionArc,
    path: str | Path,
    *,
    cuts: tuple[float, ...] = (),
    title: str | None = None,
    dpi: int = 110,
    overlay: ArcOverlay | None = None,
) -> Path:
    """Write a PNG (or any format matplotlib knows from the suffix) of ``arc`` to ``path``.

    The background is transparent and text mid-grey, so the picture reads on a light or a
    dark page. With ``overlay``, the track's section is drawn dashed over the clip's curves
    and a third strip shows the track's own timeline with the used section marked.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    path = Path(path)
    rows, ratios = (3, [5, 1, 1]) if overlay is not None else (2, [5, 1])
    # 7 inches wide with 9 pt text: the page shows it at least 600 px wide, readable on a phone too
    fig, axes = plt.subplots(rows, 1, figsize=(7, 4.4 + 1.0 * (rows - 2)),
                             gridspec_kw={"height_ratios": ratios, "hspace": 0.45})
    ax, strip = axes[0], axes[1]
    strip.sharex(ax)
    try:
        _curves(ax, arc, cuts, overlay)
        # below everything: a page's own buttons and labels sit over a picture's top corners
        short = title if not title or len(title) <= 48 else title[:45] + "..."
        legend = fig.legend(*ax.get_legend_handles_labels(), loc="upper center", bbox_to_anchor=(0.5, 0.0),
                            fontsize=9, ncol=3, frameon=False, labelcolor=INK, title=short, title_fontsize=9)
        legend.get_title().set_color(INK)
        _strip(strip, arc, cuts)
        if overlay is not None:
            _timeline(axes[2], overlay)
        for a in axes:
            _style(a)
        fig.savefig(path, dpi=dpi, bbox_inches="tight", transparent=True)
    finally:
        plt.close(fig)
    return path


def _curves(ax: Any, arc: EmotionArc, cuts: tuple[float, ...], overlay: ArcOverlay | None) -> None:
    ax.plot(arc.times, arc.valence, color=VALENCE, lw=2, label="clip valence")
    ax.plot(arc.times, arc.arousal, color=AROUSAL, lw=2, label="clip arousal")
    if overlay is not None:
        ax.plot(arc.times, overlay.valence, color=VALENCE, lw=1.6, ls=(0, (4, 2)), alpha=0.9, label="track valence")
        ax.plot(arc.times, overlay.arousal, color=AROUSAL, lw=1.6, ls=(0, (4, 2)), alpha=0.9, label="track arousal")
    ax.axhline(0, color=INK, lw=0.6)
    for i, c in enumerate(cuts):
        ax.axvline(c, color=INK, ls=":", lw=0.9, label="cut" if i == 0 else None)
    ax.set_ylim(-1.05, 1.05)
    ax.set_ylabel("valence / arousal", fontsize=9)
    ax.grid(alpha=0.25, color=INK)
    ax.tick_params(labelbottom=False)


def _strip(strip: Any, arc: EmotionArc, cuts: tuple[float, ...]) -> None:
    for c in cuts:
        strip.axvline(c, color="black", lw=0.9)
    for start, end, emo in sections(arc):
        strip.axvspan(start, end, color=_COLOURS[emo], alpha=0.85)
        if end - start > 0.06 * max(arc.duration, 1e-9):
            strip.text((start + end) / 2, 0.5, emo, ha="center", va="center", fontsize=9, color="black")
    strip.set_yticks([])
    strip.set_ylabel("emotion", fontsize=9, rotation=0, ha="right", va="center")
    strip.set_xlabel("clip time (s)", fontsize=9)
    strip.set_xlim(0, max(arc.duration, 1e-3))


def _timeline(ax: Any, o: ArcOverlay) -> None:
    """The whole track as a bar with the used section filled and labelled."""
    ax.axvspan(0, o.track_duration, color=INK, alpha=0.2)
    ax.axvspan(o.start, o.end, color=AROUSAL, alpha=0.8)
    ax.text((o.start + o.end) / 2, 0.5, f"used {o.start:.1f}-{o.end:.1f} s", ha="center", va="center", fontsize=9,
            color="white")
    ax.set_xlim(0, max(o.track_duration, o.end, 1e-3))
    ax.set_yticks([])
    ax.set_ylabel("track", fontsize=9, rotation=0, ha="right", va="center")
    ax.set_xlabel(f"{o.label}: its own time (s)", fontsize=9)
