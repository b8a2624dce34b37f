#!/usr/bin/env bash
# All GPU figures of issue 15 in one call, within 8 minutes on one H100, into one JSON summary:
#
#   bash benchmarks/gpu_check.sh OUT_DIR          # on the GPU machine
#   bash benchmarks/gpu_check.sh OUT_DIR cpu      # the same steps with tiny sizes on a CPU
#
# Steps (each with its own time limit, in this order; a failed or timed-out step is recorded
# and the next one runs):
#   node         benchmarks/segmentation_node.py --profile paper --device cuda (end to end
#                through DDS + bare engine; the segmentation node's own benchmark)
#   sam          benchmarks/sam_worker.py, ViT-H, 24 points per side, 640x480: naive generator
#                vs fast path fp32 and bf16+SDPA, mask agreement
#   train        benchmarks/train_step.py --profile paper: one iteration at 480x640, batch 1,
#                fp32 vs bf16 (x channels-last), short loss curves of both
#   sam_compile  as sam, with torch.compile of the encoder (gets the time that is left)
# OUT_DIR/summary.json holds every step's exit code, seconds and last JSON line; OUT_DIR/*.log
# the full output. The cpu mode (test/test_gpu_check.py runs it) uses the fast node profile, a
# tiny SAM (onnx and torch backends; SDPA instead of compile) and the tiny training model.
#
# The GPU machine has Python 3.12 with torch, timm, onnx, onnxruntime, scikit-image and opencv,
# but not segment-anything, rosbags or the ROS 2 client wheels. Fetch them once as py3.12 wheels
# into the git-ignored .whl/ (benchmarks/gpu_wheels.sh) and carry .whl with the call; this
# script installs them into a throw-away venv (/tmp/v, system site packages visible). Set PY to
# use another interpreter.
set -uo pipefail
OUT=${1:?usage: bash benchmarks/gpu_check.sh OUT_DIR [cpu]}
MODE=${2:-cuda}
case "$MODE" in cuda|cpu) ;; *) echo "gpu_check.sh: mode must be cuda or cpu, got $MODE" >&2; exit 2;; esac
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/.."
START=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET:-470}     # seconds for the whole script (8 min with margin)
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

# step NAME MAX_SECONDS CMD...: run with a time limit (capped by what is left of the budget)
step() {
  local name=$1 limit=$2; shift 2
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
  step node 170 "$PY" benchmarks/segmentation_node.py --profile paper --device cuda \
    --seconds "${SECONDS_E2E:-15}"
  step sam 120 "$PY" benchmarks/sam_worker.py --device cuda --model-type vit_h --frames 2 \
    --variants torch,torch+bf16+sdpa,torch+bf16enc+sdpa
  step train 100 "$PY" benchmarks/train_step.py --profile paper --device cuda
  step sam_compile 200 "$PY" benchmarks/sam_worker.py --device cuda --model-type vit_h \
    --frames 2 --variants torch+bf16+sdpa+compile
else
  step node 170 "$PY" benchmarks/segmentation_node.py --profile fast --device cpu --seconds 3
  step sam 200 "$PY" benchmarks/sam_worker.py --device cpu --model-type tiny --threads 1 \
    --points-per-side 3 --height 120 --width 160 --variants onnx,torch \
    --cache-dir "$OUT/onnx_cache"
  step train 150 "$PY" benchmarks/train_step.py --tiny --device cpu --threads 1 --warmup 1 \
    --iters 2 --curve-iters 4
  step sam_compile 150 "$PY" benchmarks/sam_worker.py --device cpu --model-type tiny \
    --threads 1 --points-per-side 3 --height 120 --width 160 --variants torch+sdpa
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
