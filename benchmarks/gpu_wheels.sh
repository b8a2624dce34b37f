#!/usr/bin/env bash
# Copyright 2026 sam2real contributors
# SPDX-License-Identifier: MIT

# Fetch the Python 3.12 wheels that benchmarks/gpu_check.sh installs on the GPU machine (which
# has torch, timm, onnx, onnxruntime, numpy, PyYAML, opencv, scikit-image but no internet):
# segment-anything and the ROS 2 client wheels the nodes need, with their dependencies, at the
# versions installed in this repository's venv. Run here (with PyPI access) from the repo root:
#
#   bash benchmarks/gpu_wheels.sh            # -> .whl/ (git-ignored), about 45 MB
#
# then carry .whl with the device call (run(..., carry=['.whl'])).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DEST=${1:-.whl}
mkdir -p "$DEST"
# the dependency closure of the top-level packages, pinned to the versions installed here;
# packages the GPU image already has are left out, and empy (sdist only; rosidl's code
# generators use it at build time, nothing imports it at run time)
PKGS=$("$PY" - <<'PYEOF'
import re
from importlib import metadata
top = ['segment-anything', 'ros-rclpy', 'ros-rmw-fastrtps-cpp', 'ros-sensor-msgs',
       'ros-std-msgs', 'ros-std-srvs', 'ros-action-msgs', 'ros-diagnostic-msgs']
there = {'numpy', 'pyyaml', 'typing-extensions', 'setuptools', 'packaging', 'torch',
         'torchvision', 'matplotlib', 'opencv-python', 'pycocotools', 'onnx', 'onnxruntime',
         'empy'}
norm = lambda n: re.sub(r'[-_.]+', '-', n).lower()
seen, todo = {}, list(top)
while todo:
    name = norm(todo.pop())
    if name in seen or name in there:
        continue
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        continue
    seen[name] = dist.version
    for req in dist.requires or []:
        if 'extra ==' in req:
            continue
        todo.append(re.match(r'[A-Za-z0-9_.\-]+', req).group(0))
print(' '.join(f'{n}=={v}' for n, v in sorted(seen.items())))
PYEOF
)
echo "fetching $(echo "$PKGS" | wc -w) wheels for cp312 into $DEST"
PLATFORMS=""
for p in manylinux_2_39 manylinux_2_35 manylinux_2_34 manylinux_2_31 manylinux_2_28 \
         manylinux_2_27 manylinux_2_17 manylinux2014 manylinux1; do
  PLATFORMS="$PLATFORMS --platform ${p}_x86_64"
done
# shellcheck disable=SC2086
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp $PLATFORMS --platform any -d "$DEST" $PKGS
du -sh "$DEST"
