#!/usr/bin/env bash
# Copyright 2026 sam2real contributors
# SPDX-License-Identifier: MIT

# Creates .venv and installs the pinned dependencies. Idempotent: a second run only checks stamps.
#   GPU=1 tools/setup_env.sh   -> onnxruntime-gpu instead of onnxruntime
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3.11}
VENV=.venv
command -v "$PY" >/dev/null || { echo "setup: $PY not found: install it, or set PYTHON=python3 (e.g. the ROS distro's Python)" >&2; exit 1; }

# A sourced ROS 2 distro provides rclpy for the system Python: let the venv see it.
ROS_SOURCED=0
if [ -n "${ROS_DISTRO:-}" ]; then
  if "$PY" -c 'import rclpy' >/dev/null 2>&1; then
    ROS_SOURCED=1
  else
    echo "setup: ROS 2 $ROS_DISTRO is sourced but $PY cannot import its rclpy (another Python" \
         "version?): set PYTHON=python3 to use the distro's Python; going on without the distro" >&2
  fi
fi

make_venv() {
  rm -rf "$VENV"
  if [ "$ROS_SOURCED" = 1 ]; then "$PY" -m venv --system-site-packages "$VENV"; else "$PY" -m venv "$VENV"; fi
}
# (re)create the venv when it is missing or half-made (e.g. an interrupted ensurepip)
if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  echo "setup: creating $VENV (ROS 2 distro sourced: $ROS_SOURCED)"
  make_venv || { echo "setup: venv creation failed, retrying once" >&2; sleep 2; make_venv; }
elif [ "$ROS_SOURCED" = 1 ] && ! grep -qi '^include-system-site-packages *= *true' "$VENV/pyvenv.cfg"; then
  # made before the distro was sourced: it would not see the distro's rclpy and launch
  echo "setup: re-creating $VENV so that it sees the sourced ROS 2 $ROS_DISTRO"
  make_venv
fi
PIP="$VENV/bin/python -m pip --disable-pip-version-check"
editable() {
  $PIP install -q --no-deps --no-build-isolation -e . > "$VENV/editable-install.log" 2>&1 \
    || { cat "$VENV/editable-install.log"; echo "setup: installing sam2real failed" >&2; exit 1; }
}
# pip's configured local indexes may not exist on every machine: drop that noise, keep the rest.
quiet() { "$@" 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }; }
# ROS 2 launch tooling (launch, launch_ros, launch_testing, ros2launch) is not on PyPI: without a
# sourced distro it comes as wheels from ../shared/ros2-launch when that folder exists (CI).
LAUNCH_WHEELS=$ROOT/../shared/ros2-launch
HAVE_LAUNCH=0
if [ "$ROS_SOURCED" = 0 ] && [ -x "$LAUNCH_WHEELS/install.sh" ]; then HAVE_LAUNCH=1; fi
if [ "$ROS_SOURCED" = 0 ] && [ "$HAVE_LAUNCH" = 0 ]; then
  echo "setup: no ROS 2 launch tooling (no sourced distro, no $LAUNCH_WHEELS): ros2 launch is" \
       "unavailable and the launch tests skip" >&2
fi
launch_sig=none
if [ "$HAVE_LAUNCH" = 1 ]; then
  launch_sig=$(cat "$LAUNCH_WHEELS/install.sh" "$LAUNCH_WHEELS/wheels/SOURCES.txt" 2>/dev/null | sha256sum | cut -c1-8)
fi
want=$(cat requirements.txt requirements-ros.txt setup.py | sha256sum | cut -c1-16)-gpu${GPU:-0}-ros$ROS_SOURCED-launch$launch_sig
if [ -f "$VENV/.setup-stamp" ] && [ "$(cat "$VENV/.setup-stamp")" = "$want" ]; then
  # The editable install must resolve the package from anywhere (not only from the repo root).
  if (cd / && "$ROOT/$VENV/bin/python" -c 'import sam2real_ros') >/dev/null 2>&1; then
    echo "setup: $VENV is up to date"; exit 0
  fi
  echo "setup: re-installing sam2real (editable) into $VENV"
  editable; exit 0
fi
echo "setup: installing pinned dependencies into $VENV (first run: ~2 min, ~6 GB)"
if [ "${GPU:-0}" = 1 ]; then
  grep -v '^onnxruntime==' requirements.txt > "$VENV/requirements-gpu.txt"
  ver=$(grep '^onnxruntime==' requirements.txt | cut -d= -f3)
  echo "onnxruntime-gpu==$ver" >> "$VENV/requirements-gpu.txt"
  $PIP uninstall -y -q onnxruntime >/dev/null 2>&1 || true
  quiet $PIP install -q -r "$VENV/requirements-gpu.txt"
else
  $PIP uninstall -y -q onnxruntime-gpu >/dev/null 2>&1 || true
  quiet $PIP install -q -r requirements.txt
fi
# colcon-core and friends pull in a newer pytest unless held (launch_testing needs pytest<9)
grep -E '^pytest==' requirements.txt > "$VENV/constraints.txt"
if [ "$ROS_SOURCED" = 0 ]; then  # the system Python has no rclpy: use the PyPI wheels
  echo "setup: no ROS 2 distro sourced -> installing the ROS 2 client wheels and colcon from PyPI"
  quiet $PIP install -q -r requirements-ros.txt -c "$VENV/constraints.txt"
  if [ "$HAVE_LAUNCH" = 1 ]; then
    echo "setup: installing the ROS 2 launch tooling wheels from $LAUNCH_WHEELS"
    PIP_CONSTRAINT="$ROOT/$VENV/constraints.txt" quiet "$LAUNCH_WHEELS/install.sh" "$VENV/bin/python" > "$VENV/launch-install.log" \
      || { cat "$VENV/launch-install.log"; echo "setup: installing the launch wheels failed" >&2; exit 1; }
  fi
fi
editable  # sam2real itself, editable
echo "$want" > "$VENV/.setup-stamp"
echo "setup: done"
