#!/usr/bin/env bash
# The test suite: sets up .venv if needed, then runs pytest (extra args pass through).
# Two pytest-xdist workers by default: most tests are single-threaded Python (graph
# tracing, process start-up), so two cores finish the suite sooner; TFBERT_TEST_WORKERS=0
# runs in one process (e.g. to debug with pdb). Each test file stays in one worker
# (--dist loadfile): its module fixtures are built once and its tests keep their order.
set -e
. "$(dirname "$0")/setup_env.sh"
export HF_HUB_OFFLINE=1
python -m pytest -q -n "${TFBERT_TEST_WORKERS:-2}" --dist loadfile --durations=15 "$@" tests
