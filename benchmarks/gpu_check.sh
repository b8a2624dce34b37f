#!/usr/bin/env bash
# One-shot GPU figures for the README (run on a lent GPU machine; README "Performance"):
#   bash benchmarks/gpu_check.sh OUT_DIR [cpu]
# Needs: python3 with torch/timm/onnx (the machine's), plus the ROS 2 client wheels and
# segment-anything carried as wheels in .whl/ (installed into a throw-away venv here).
set -uo pipefail
OUT=${1:-/tmp/gpu_check}; DEV=${2:-cuda}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_DOMAIN_ID=77
if [ -d .whl ] && [ ! -x /tmp/v/bin/python ]; then
  python3 -m venv --system-site-packages /tmp/v
  /tmp/v/bin/python -m pip install -q --no-index --no-deps --no-compile .whl/*.whl
fi
PY=${PY:-/tmp/v/bin/python}; [ -x "$PY" ] || PY=python3
export PYTHONPATH=$PWD AMENT_PREFIX_PATH=$(dirname "$(dirname "$PY")")
unset _ROS_WHEELS_BOOTSTRAP_COMPLETE
PROFILE=${PROFILE:-paper}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | tee "$OUT/gpu.txt"
"$PY" - "$OUT/model_$PROFILE.pt" "$PROFILE" <<'PY'
import sys, torch
from sam2real_ros.modeling import model as m
cfg = m.load_profile(sys.argv[2], pretrained=False, num_classes=22)
net = m.build_model(cfg)
torch.save(m.checkpoint_payload(net, cfg, ['bg'] + [f'obj{i}' for i in range(21)]), sys.argv[1])
print('saved', sys.argv[1])
PY
echo "== engine + node end to end ($PROFILE, torch backend, $DEV)"
timeout 200 "$PY" -m benchmarks.segmentation_node --profile "$PROFILE" --device "$DEV" \
  --backend torch --model "$OUT/model_$PROFILE.pt" --seconds ${SECONDS_E2E:-15} 2>&1 | tee "$OUT/seg_node.log" | tail -4
echo "== SAM worker (${SAM_TYPE:-vit_h}, $DEV)"
timeout 240 "$PY" -m benchmarks.sam_worker --device "$DEV" --model-type ${SAM_TYPE:-vit_h} \
  --frames ${SAM_FRAMES:-2} 2>&1 | tee "$OUT/sam.log" | tail -3
timeout 150 "$PY" -m benchmarks.sam_worker --device "$DEV" --model-type ${SAM_TYPE:-vit_h} \
  --frames ${SAM_FRAMES:-2} --encoder-dtype bfloat16 2>&1 | tee "$OUT/sam_bf16.log" | tail -2
