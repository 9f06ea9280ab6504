"""Media -> signals: emotion arcs, cuts and pace from video, audio and symbolic music.

Public names import lazily, so ``import analysis`` stays cheap and a heavy
dependency is only loaded by the function that needs it.
"""

from __future__ import annotations

import os
from importlib import import_module
from typing import Any

# Thread pools that spin while they wait collapse when the cores are shared (by the page's
# other requests, a batch, or this package's own steps that run side by side: the text model
# beside Whisper, the note model loading beside the analysis). Measured on this 2-core machine,
# a minute of dialogue analysed with two of its steps on threads side by side:
# * OpenMP workers (Whisper's CTranslate2, torch) sleep when idle instead of spinning: 10.3 s
#   and 27 s spinning against 6.6 s and 14 s sleeping, while another job ran. Set before either
#   library loads its OpenMP runtime; a value set by the user wins.
# * NumPy's BLAS (OpenBLAS, whose threads spin) runs on one thread: every matrix here is small
#   (the sentence encoder's, the audio cues'), and on two threads the same analysis took
#   26-36 s instead of 6. Unless the user set a BLAS thread count.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
if not {"OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"} & set(os.environ):
    import numpy  # noqa: F401 (loads the BLAS that the limit applies to)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")

from analysis.arc import EMOTION_VA, EMOTIONS, EmotionArc, emotions_to_va, va_to_emotions
from analysis.errors import MediaError, ModelError, ParameterError, SoundtrackError

_LAZY = {
    "analyze_video": "analysis.video",
    "VideoAnalysis": "analysis.video",
    "analyze_track": "analysis.music.track",
    "TrackAnalysis": "analysis.music.track",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")


__all__ = [
    "EMOTIONS",
    "EMOTION_VA",
    "EmotionArc",
    "MediaError",
    "ModelError",
    "ParameterError",
    "SoundtrackError",
    "emotions_to_va",
    "va_to_emotions",
    *_LAZY,
]
