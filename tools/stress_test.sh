#!/usr/bin/env bash
# Copyright 2026 sam2real contributors
# SPDX-License-Identifier: MIT

# make test-stress: the test suite under a synthetic load, as a loaded robot or CI machine runs
# it. Starts STRESS_BUSY (default 4) busy processes, runs pytest STRESS_RUNS (default 5) times
# with the given arguments (default: the whole suite), reports each run and exits non-zero when
# any run failed. Not part of CI: a run of the whole suite takes long, five of them much longer.
#   make test-stress                                      # 5 x the whole suite
#   STRESS_RUNS=1 make test-stress PYTEST_ARGS="test/test_recorder_node.py"
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS="${STRESS_RUNS:-5}"
BUSY="${STRESS_BUSY:-4}"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for _ in $(seq "$BUSY"); do
  ( while :; do :; done ) &
  pids+=("$!")
done
failed=0
for run in $(seq "$RUNS"); do
  echo "test-stress: run $run of $RUNS under $BUSY busy processes"
  start=$(date +%s)
  if tools/venv-run python -m pytest -q -p no:cacheprovider "$@"; then
    echo "test-stress: run $run passed ($(( $(date +%s) - start )) s)"
  else
    failed=$((failed + 1))
    echo "test-stress: run $run FAILED ($(( $(date +%s) - start )) s)"
  fi
done
echo "test-stress: $failed of $RUNS run(s) failed under $BUSY busy processes"
[ "$failed" = 0 ]
