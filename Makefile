# Copyright 2026 sam2real contributors
# SPDX-License-Identifier: MIT

# sam2real: fresh machine -> `make demo` (main job on the embedded default) and `make test`.
.PHONY: setup build demo test test-stress lint bench clean
RUN := tools/venv-run
PYTEST_ARGS ?=

setup:
	@tools/setup_env.sh

demo: setup
	$(RUN) python -m sam2real_ros.demo $(DEMO_ARGS)

# the ament prefix build/install/sam2real (colcon build): what ros2 launch and launch_testing use
build: setup
	$(RUN) tools/build_prefix.sh

test: build
	$(RUN) python -m pytest -q $(PYTEST_ARGS)

# the suite STRESS_RUNS (5) times under STRESS_BUSY (4) busy processes; not in CI (tools/stress_test.sh)
test-stress: build
	tools/stress_test.sh $(PYTEST_ARGS)

lint: setup
	$(RUN) ament_flake8 . && $(RUN) ament_pep257 sam2real_ros test benchmarks launch && $(RUN) lint-imports --no-cache

bench: setup
	$(RUN) python -m benchmarks.segmentation_node --profile fast

clean:
	rm -rf build install log runs .pytest_cache
