"""``python -m sam2real_ros.demo``: the whole loop (see :mod:`sam2real_ros.demo.pipeline`)."""
import sys

from sam2real_ros.demo.pipeline import main

sys.exit(main())
