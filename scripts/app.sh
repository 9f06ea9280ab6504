#!/usr/bin/env bash
# Quick start 1: install what is missing, then serve the app on the built-in demo library.
# Extra arguments go to `soundtrack serve` (e.g. --port 7861, --share-lan).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/soundtrack serve "$@"
