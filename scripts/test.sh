#!/usr/bin/env bash
# Quick start 2: install what is missing, then run the lint and the whole test suite.
# Extra arguments go to pytest (e.g. -m slow, -k cuts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
