"""Writing a WAV so that every failure is a :class:`~analysis.errors.MediaError` naming the file.

``soundfile`` opening a path itself reports a read-only or full folder as
``LibsndfileError: Error opening '...': System error.``; here the file is opened by Python first, so
the operating system's reason ("Permission denied", "Read-only file system") reaches the user.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analysis.errors import MediaError


def write_wav_file(path: str | Path, audio: np.ndarray, sr: int, *, subtype: str = "PCM_16") -> Path:
    """``audio`` ((n,) or (n, channels)) as a WAV at ``path``, its folder created; :class:`MediaError`
    naming ``path`` when it cannot be written."""
    import soundfile

    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "wb") as handle:
            soundfile.write(handle, audio, sr, subtype=subtype, format="WAV")
    except OSError as err:
        raise MediaError(out, f"cannot be written ({err.strerror or err})") from None
    except RuntimeError as err:  # soundfile's own errors (LibsndfileError is a RuntimeError)
        out.unlink(missing_ok=True)
        raise MediaError(out, f"cannot be written as a WAV ({err})") from None
    return out
