# Copyright 2026 sam2real contributors
# SPDX-License-Identifier: MIT
#
# Permission is hereby granted, free of charge, to any person obtaining a copy
# of this software and associated documentation files (the "Software"), to deal
# in the Software without restriction, including without limitation the rights
# to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
# copies of the Software, and to permit persons to whom the Software is
# furnished to do so, subject to the following conditions:
#
# The above copyright notice and this permission notice shall be included in
# all copies or substantial portions of the Software.
#
# THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
# IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
# FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL
# THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
# LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
# OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN
# THE SOFTWARE.

"""
How many 640x480 rgb8 camera frames reach a subscriber, per publisher/subscriber reliability.

``python -m benchmarks.camera_qos [--rate-hz 30] [--seconds 8] [--no-profile]
[--subscriber best_effort] [--default-malloc]``

For each combination (publisher reliable / best_effort, subscriber reliable / best_effort,
where they match) a ``sim_camera`` process publishes and this process counts what a depth-1
subscription receives. ``sim_camera`` runs with ``config/fastdds_large_images.xml`` (a 10 MB
Fast DDS shared-memory segment) unless ``--no-profile`` gives it Fast DDS defaults, as a camera
driver started without the profile has. The subscriber runs with the segmentation node's
allocator setting (:func:`sam2real_ros.inference.runtime.reuse_large_buffers`) unless
``--default-malloc`` leaves glibc's defaults. The last line is a JSON list of
``{publisher, subscriber, profile, received_hz, rate_hz, cpu_ms_per_frame, reuse_buffers}``
(``cpu_ms_per_frame``: this process's CPU time in the window per frame received, what
receiving a frame costs a node).
"""
import argparse
import json
import sys
import tempfile
import time

COMBINATIONS = (('reliable', 'reliable'), ('reliable', 'best_effort'),
                ('best_effort', 'best_effort'))


def measure(publisher, subscriber, rate_hz, seconds, profile):
    """Return (frames per second, CPU ms per frame) a depth-1 ``subscriber`` receives."""
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from sam2real_ros.common.processes import ProcessGroup
    from sam2real_ros.nodes.graph import node_command, TIAGO_CAMERA
    from sam2real_ros.nodes.runner import BackgroundNode
    # an empty value: sim_camera keeps Fast DDS defaults
    env = {} if profile else {'FASTDDS_DEFAULT_PROFILES_FILE': ''}
    got = []
    ros = BackgroundNode('camera_qos_probe')
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                     reliability=(ReliabilityPolicy.RELIABLE if subscriber == 'reliable'
                                  else ReliabilityPolicy.BEST_EFFORT))
    ros.node.create_subscription(Image, TIAGO_CAMERA['image'],
                                 lambda msg: got.append(time.monotonic()), qos)
    procs = ProcessGroup(tempfile.mkdtemp(prefix='sam2real_camera_qos_'))
    try:
        params = {'rate_hz': rate_hz, 'qos_reliability': publisher}
        procs.start(*node_command('sim_camera', params, params_file=False), name='camera',
                    env=env)
        procs.check_alive()
        deadline = time.monotonic() + 60
        while len(got) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        start, count, cpu = time.monotonic(), len(got), time.process_time()
        time.sleep(seconds)
        n, cpu = len(got) - count, time.process_time() - cpu
        return n / (time.monotonic() - start), (1e3 * cpu / n if n else float('nan'))
    finally:
        procs.stop_all()
        ros.close()


def main(argv=None):
    """Run every combination; returns 0."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument('--rate-hz', type=float, default=30.0, help='camera rate (30)')
    ap.add_argument('--seconds', type=float, default=8.0, help='window per combination (8)')
    ap.add_argument('--no-profile', action='store_true',
                    help='camera with Fast DDS defaults (no large shared-memory segment)')
    ap.add_argument('--subscriber', choices=('reliable', 'best_effort'), default=None,
                    help='only the combinations with this subscriber reliability')
    ap.add_argument('--default-malloc', action='store_true',
                    help="glibc's allocator defaults in the subscriber (not the nodes' setting)")
    args = ap.parse_args(argv)
    from sam2real_ros.inference.runtime import reuse_large_buffers
    reuse = False if args.default_malloc else reuse_large_buffers()
    out = []
    for publisher, subscriber in COMBINATIONS:
        if args.subscriber and subscriber != args.subscriber:
            continue
        hz, cpu_ms = measure(publisher, subscriber, args.rate_hz, args.seconds,
                             not args.no_profile)
        row = {'publisher': publisher, 'subscriber': subscriber,
               'profile': not args.no_profile, 'received_hz': round(hz, 1),
               'rate_hz': args.rate_hz, 'cpu_ms_per_frame': round(cpu_ms, 2),
               'reuse_buffers': reuse}
        print(f'{publisher:>11} -> {subscriber:<11} profile {row["profile"]!s:<5} '
              f'{row["received_hz"]:5.1f} of {args.rate_hz:g} Hz, '
              f'{cpu_ms:.2f} ms CPU per frame', flush=True)
        out.append(row)
    print(json.dumps(out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
