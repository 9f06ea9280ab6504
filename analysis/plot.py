"""Plot a clip's valence and arousal over time with the cuts marked (matplotlib, Agg).

A strip below the curves shows the dominant emotion per section: the arc is cut into
runs of the same most-probable emotion and each run is coloured and labelled.
"""

from __future__ import annotations

from pathlib import Path

from analysis.arc import EMOTIONS, EmotionArc

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


def plot_arc(
    arc: EmotionArc, path: str | Path, *, cuts: tuple[float, ...] = (), title: str | None = None, dpi: int = 110
) -> Path:
    """Write a PNG (or any format matplotlib knows from the suffix) of ``arc`` to ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    path = Path(path)
    fig, (ax, strip) = plt.subplots(
        2, 1, figsize=(10, 4.2), sharex=True, gridspec_kw={"height_ratios": [5, 1], "hspace": 0.08}
    )
    try:
        ax.plot(arc.times, arc.valence, color="#1f77b4", lw=2, label="valence")
        ax.plot(arc.times, arc.arousal, color="#d62728", lw=2, label="arousal")
        ax.axhline(0, color="black", lw=0.6)
        for i, c in enumerate(cuts):
            ax.axvline(c, color="grey", ls="--", lw=0.9, label="cut" if i == 0 else None)
            strip.axvline(c, color="black", lw=0.9)
        ax.set_ylim(-1.05, 1.05)
        ax.set_ylabel("valence / arousal")
        ax.legend(loc="upper right", fontsize=8, ncol=3)
        ax.grid(alpha=0.3)
        if title:
            ax.set_title(title)
        used = []
        for start, end, emo in sections(arc):
            strip.axvspan(start, end, color=_COLOURS[emo], alpha=0.85)
            if end - start > 0.06 * max(arc.duration, 1e-9):
                strip.text((start + end) / 2, 0.5, emo, ha="center", va="center", fontsize=7)
            used.append(emo)
        strip.set_yticks([])
        strip.set_ylabel("emotion", fontsize=8)
        strip.set_xlabel("time (s)")
        strip.set_xlim(0, max(arc.duration, 1e-3))
        handles = [Patch(color=_COLOURS[e], label=e) for e in EMOTIONS if e in used]
        if handles:
            strip.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path
