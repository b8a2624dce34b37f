#!/usr/bin/env bash
# Copyright 2026 sam2real contributors
# SPDX-License-Identifier: MIT

# All GPU figures of issue 15 in one call, within 8 minutes on one H100/H200, into one JSON
# summary. From the repository root:
#
#   bash benchmarks/gpu_check.sh OUT          # on the GPU machine (stops at once, exit 2, with
#                                             # one line when no CUDA GPU is visible)
#   bash benchmarks/gpu_check.sh OUT cpu      # the same steps with tiny sizes on a CPU
#
# Steps (each with its own time limit, in this order; a failed or timed-out step is recorded
# and the next one runs):
#   node         python -m benchmarks.segmentation_node --profile paper --device cuda (end to
#                end through DDS + bare engine; onnxruntime with TensorRT/CUDA when this
#                onnxruntime has them, else the torch backend on a random .pt checkpoint)
#   sam          python -m benchmarks.sam_worker, ViT-H, 24 points per side, 640x480: naive
#                generator vs fast path fp32 and bf16+SDPA, mask agreement
#   train        python -m benchmarks.train_step --profile paper: one iteration at 480x640,
#                batch 1, fp32 vs bf16 (x channels-last), short loss curves of both
#   sam_compile  as sam, with torch.compile of the encoder (gets the time that is left)
# OUT/summary.json holds every step's exit code, seconds and last JSON line; OUT/*.log the full
# output; the last line printed is a short JSON. The cpu mode (test/test_gpu_check.py runs it)
# uses the fast node profile, the tests' micro SAM (onnx and torch backends; SDPA instead of
# compile) and the tiny training model.
#
# If the GPU machine's Python lacks segment-anything, rosbags or the ROS 2 client wheels, fetch
# them once as wheels for its Python into the git-ignored .whl/ (benchmarks/gpu_wheels.sh) and
# bring .whl along: this script installs them into a throw-away venv (/tmp/v, system site
# packages visible). Otherwise it uses .venv/bin/python (make setup) when there is one, else
# python3; set PY to use another interpreter.
set -uo pipefail
OUT=${1:?usage: bash benchmarks/gpu_check.sh OUT [cpu]}
MODE=${2:-cuda}
case "$MODE" in cuda|cpu) ;; *) echo "gpu_check.sh: mode must be cuda or cpu, got $MODE" >&2; exit 2;; esac
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/.."
START=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET:-470}     # seconds for the whole script (8 min with margin)
SLACK=${GPU_CHECK_SLACK:-1}         # multiplies every step's limit (a test on a loaded CPU)
export PYTHONUNBUFFERED=1 ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-77}
if [ -z "${PY:-}" ]; then
  if ls .whl/*.whl >/dev/null 2>&1; then
    if [ ! -x /tmp/v/bin/python ]; then
      python3 -m venv --system-site-packages /tmp/v &&
        /tmp/v/bin/python -m pip install -q --no-index --no-deps --no-compile .whl/*.whl ||
        echo "gpu_check.sh: installing .whl/ failed" >&2
    fi
    PY=/tmp/v/bin/python
  elif [ -x .venv/bin/python ]; then
    PY=$PWD/.venv/bin/python       # make setup's venv (GPU=1 for onnxruntime-gpu)
  else
    PY=python3
  fi
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export AMENT_PREFIX_PATH=$(dirname "$(dirname "$PY")")${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}
unset _ROS_WHEELS_BOOTSTRAP_COMPLETE
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader \
  >"$OUT/gpu.txt" 2>/dev/null || echo "no GPU (mode $MODE)" >"$OUT/gpu.txt"
cat "$OUT/gpu.txt"
: >"$OUT/steps.tsv"
if [ "$MODE" = cuda ]; then
  # no GPU and no cpu argument: one line and exit 2 (and a summary that says so), not four
  # steps that each fail
  if ! WHY=$("$PY" -c 'import sys
try:
    import torch
except ImportError as e:
    sys.exit(f"{sys.executable} cannot import torch ({e}); set PY to a Python with torch")
sys.exit(None if torch.cuda.is_available() else f"torch {torch.__version__} sees no CUDA GPU "
         "(torch.cuda.is_available() is False)")' 2>&1); then
    WHY=$(echo "$WHY" | tail -n 1)
    echo "gpu_check.sh: cannot run the GPU steps: $WHY (the CPU smoke run:" \
      "bash benchmarks/gpu_check.sh $1 cpu)" >&2
    "$PY" -c 'import json, sys
json.dump({"mode": "cuda", "ok": False, "error": sys.argv[2], "steps": {}},
          open(sys.argv[1], "w"), indent=1)' "$OUT/summary.json" "$WHY" 2>/dev/null
    exit 2
  fi
fi

# step NAME MAX_SECONDS CMD...: run with a time limit (capped by what is left of the budget)
step() {
  local name=$1 limit=$(( $2 * SLACK )); shift 2
  local left=$(( BUDGET - ($(date +%s) - START) - 5 ))
  [ "$limit" -gt "$left" ] && limit=$left
  if [ "$limit" -lt 20 ]; then
    printf '%s\t%s\t%s\n' "$name" skipped 0 >>"$OUT/steps.tsv"
    echo "== $name: skipped (${left} s of the budget left)"
    return
  fi
  echo "== $name (limit ${limit} s): $*"
  local t0=$(date +%s)
  timeout -k 10 "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - t0 ))" >>"$OUT/steps.tsv"
  tail -n 3 "$OUT/$name.log" | cut -c1-400
}

if [ "$MODE" = cuda ]; then
  NODE_MODEL=()
  if ! "$PY" -c 'import onnxruntime as o, sys
sys.exit(not {"TensorrtExecutionProvider", "CUDAExecutionProvider"} & set(o.get_available_providers()))' \
      2>/dev/null; then
    # this onnxruntime has no GPU provider: the node runs the torch backend on a random-weight
    # checkpoint of the paper profile
    "$PY" - "$OUT/paper.pt" <<'PYEOF' >"$OUT/paper_pt.log" 2>&1 && NODE_MODEL=(--backend torch --model "$OUT/paper.pt")
import sys

import torch

from sam2real_ros.modeling import model as m
cfg = m.load_profile('paper', pretrained=False, num_classes=3)
torch.save(m.checkpoint_payload(m.build_model(cfg), cfg, ['background', 'object_a', 'object_b']),
           sys.argv[1])
PYEOF
  fi
  step node 170 "$PY" -m benchmarks.segmentation_node --profile paper --device cuda \
    --seconds "${SECONDS_E2E:-15}" "${NODE_MODEL[@]}"
  step sam 120 "$PY" -m benchmarks.sam_worker --device cuda --model-type vit_h --frames 2 \
    --variants torch,torch+bf16+sdpa,torch+bf16enc+sdpa
  step train 100 "$PY" -m benchmarks.train_step --profile paper --device cuda
  step sam_compile 200 "$PY" -m benchmarks.sam_worker --device cuda --model-type vit_h \
    --frames 2 --variants torch+bf16+sdpa+compile
else
  step node 170 "$PY" -m benchmarks.segmentation_node --profile fast --device cpu --seconds 3
  SMALL_SAM=(--device cpu --model-type micro --threads 1 --points-per-side 4 --height 120
             --width 160 --stability-score-thresh 0.6 --skip-fallback)
  step sam 200 "$PY" -m benchmarks.sam_worker "${SMALL_SAM[@]}" --variants onnx,torch \
    --cache-dir "$OUT/onnx_cache"
  step train 150 "$PY" -m benchmarks.train_step --tiny --device cpu --threads 1 --warmup 1 \
    --iters 2 --batches 2 --curve-iters 4
  step sam_compile 150 "$PY" -m benchmarks.sam_worker "${SMALL_SAM[@]}" --variants torch+sdpa
fi

"$PY" - "$OUT" "$MODE" "$START" <<'PYEOF'
import json, os, sys, time
out, mode, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
summary = {'mode': mode, 'machine': open(os.path.join(out, 'gpu.txt')).read().strip(),
           'steps': {}}
for line in open(os.path.join(out, 'steps.tsv')):
    name, rc, secs = line.rstrip('\n').split('\t')
    entry = {'rc': None if rc == 'skipped' else int(rc), 'seconds': int(secs),
             'skipped': rc == 'skipped', 'result': None}
    log = os.path.join(out, name + '.log')
    lines = open(log, errors='replace').read().splitlines() if os.path.exists(log) else []
    for text in reversed(lines):
        if text.startswith('{'):
            try:
                entry['result'] = json.loads(text)
                break
            except ValueError:
                pass
    if entry['rc'] not in (0, None) or entry['result'] is None:
        entry['log_tail'] = lines[-8:]
    summary['steps'][name] = entry
summary['wall_s'] = int(time.time()) - start
summary['ok'] = all(e['rc'] == 0 and e['result'] is not None for e in summary['steps'].values())
with open(os.path.join(out, 'summary.json'), 'w') as f:
    json.dump(summary, f, indent=1)
print(json.dumps({'ok': summary['ok'], 'wall_s': summary['wall_s'],
                  'steps': {k: v['rc'] for k, v in summary['steps'].items()}}))
PYEOF
