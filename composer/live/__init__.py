"""Live scoring: music that follows a valence/arousal target while it plays (:class:`LiveComposer`)."""

from __future__ import annotations

from composer.live.session import LiveComposer

__all__ = ["LiveComposer"]
