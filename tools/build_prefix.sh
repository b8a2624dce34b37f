#!/usr/bin/env bash
# Copyright 2026 sam2real contributors
# SPDX-License-Identifier: MIT

# Builds sam2real into the ament prefix build/install/sam2real with `colcon build`, the way a
# robot does, so that `ros2 launch sam2real ...` and the launch_testing tests run against the
# installed package (executables in lib/sam2real, share/sam2real/{launch,config}).
# tools/venv-run puts that prefix on AMENT_PREFIX_PATH. Without colcon (no ROS 2 distro and no
# ../shared/ros2-launch at set-up) it says so and builds nothing: the launch tests then skip.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v colcon >/dev/null 2>&1; then
  if [ -n "${ROS_DISTRO:-}" ]; then
    echo "build: colcon not found beside the sourced ROS 2 $ROS_DISTRO (apt install python3-colcon-common-extensions): the launch tests will skip"
  else
    echo "build: colcon not found (not installed by make setup): the launch tests will skip"
  fi
  exit 0
fi
mkdir -p build
if colcon --log-base build/log build --paths . --packages-select sam2real \
    --build-base build/colcon --install-base build/install > build/colcon-build.log 2>&1; then
  echo "build: sam2real installed into build/install/sam2real (colcon build; log build/colcon-build.log)"
else
  tail -n 30 build/colcon-build.log >&2
  echo "build: colcon build failed (log: build/colcon-build.log)" >&2
  exit 1
fi
