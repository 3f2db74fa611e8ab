#!/usr/bin/env bash
# The main job, offline: MiniLM-L6 with the three heads on the shipped IMDB
# sample (seq length 128), then the summary table and figure paths.
set -e
. "$(dirname "$0")/setup_env.sh"
export HF_HUB_OFFLINE=1
tfbert train --config scripts/demo_sweep.yaml "$@"
