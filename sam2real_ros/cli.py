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
The ``sam2real`` command: one entry point, one subcommand per job.

Each subcommand lives in its own module that exposes ``main(argv=None)`` and is imported only
when used, so ``sam2real --help`` is fast and a missing optional dependency of one job never
breaks another.
"""
import importlib
import sys

from sam2real_ros import version
from sam2real_ros.common.errors import Sam2realError

SUBCOMMANDS = {
    'demo': ('sam2real_ros.demo.pipeline', 'run the whole loop on the embedded default data'),
    'train': ('sam2real_ros.training.train',
              'train a model (synthetic + SAM-regularized real frames)'),
    'evaluate': ('sam2real_ros.training.evaluate', 'mIoU (Eq. 8) of a checkpoint or ONNX model'),
    'adapt': ('sam2real_ros.adaptation.adapt',
              'fine-tune on new robot frames, gate, deploy if not worse; rollback, status'),
    'export': ('sam2real_ros.inference.export',
               'export a checkpoint (EMA weights) to ONNX for the node'),
    'segment': ('sam2real_ros.sam.segment_cli',
                'run SAM (or the fallback) on a dataset, resumably'),
    'extract-episodes': ('sam2real_ros.recording.extract', 'cut grasp episodes out of a rosbag2'),
    'extract-frames': ('sam2real_ros.data.rosbag',
                       'image folder from one topic of a rosbag2, subsampled by time'),
    'render-ycb': ('sam2real_ros.data.ycb_render',
                   'YCB-Video scenes (physics + CPU render) into a BOP dataset'),
}


def _usage():
    lines = ['usage: sam2real <command> [options]   (sam2real <command> --help for details)',
             '       sam2real --version', '', 'commands:']
    lines += [f'  {name:<18}{help_}' for name, (_, help_) in SUBCOMMANDS.items()]
    return '\n'.join(lines)


def main(argv=None):
    """Dispatch ``sam2real <command> ...`` to the command's module; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print(f'sam2real: no command given\n\n{_usage()}', file=sys.stderr)
        return 2
    if argv[0] in ('-h', '--help'):
        print(_usage())
        return 0
    if argv[0] in ('-V', '--version'):
        print(f'sam2real {version()}')
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f'sam2real: unknown command {name!r}\n\n{_usage()}', file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    try:
        return module.main(rest) or 0
    except Sam2realError as exc:  # bad input a subcommand did not report itself: one line
        print(f'sam2real {name}: error: {exc}', file=sys.stderr)
        return exc.exit_code


if __name__ == '__main__':
    sys.exit(main())
