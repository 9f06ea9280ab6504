"""The trained models that ship with the package (package data, not code).

``composer.pt`` (+ ``composer.json``) is the conditional MIDI generator described in
``README.md`` here, ``composer.npz`` the same weights for sampling without torch, and
``music_emotion.npz`` the audio music-emotion reader. This folder is a package only so that a plain ``pip install .``
carries the files and :mod:`importlib.resources` finds them wherever the package is
installed; look them up with :func:`composer.model.shipped.shipped_file`.
"""
