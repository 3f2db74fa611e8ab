#!/usr/bin/env bash
# The test suite: sets up .venv if needed, then runs pytest (extra args pass through).
set -e
. "$(dirname "$0")/setup_env.sh"
export HF_HUB_OFFLINE=1
python -m pytest -q "$@" tests
