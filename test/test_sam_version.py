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

"""The segment-anything subclass says clearly when the installed library is another version."""
import subprocess
import sys

from sam2real_ros.sam import sam_fast

IMPORT_AS = """
import importlib.metadata as m
import warnings
real = m.version
m.version = lambda name: {fake!r} if name == 'segment-anything' else real(name)
warnings.simplefilter('always')
import sam2real_ros.sam.sam_fast
"""


def _import_with_version(fake):
    return subprocess.run([sys.executable, '-c', IMPORT_AS.format(fake=fake)],
                          capture_output=True, text=True, timeout=120)


def test_mismatch_message_names_both_versions():
    assert sam_fast.version_mismatch(sam_fast.WRITTEN_FOR) is None
    msg = sam_fast.version_mismatch('1.1')
    assert 'segment-anything 1.0' in msg and '1.1 is installed' in msg
    assert 'test/test_segmenters.py' in msg
    assert 'an unknown version is installed' in sam_fast.version_mismatch(None)


def test_import_warns_only_for_another_installed_version():
    other = _import_with_version('1.1')
    assert other.returncode == 0, other.stderr
    assert 'SamVersionWarning' in other.stderr and '1.1 is installed' in other.stderr
    pinned = _import_with_version(sam_fast.WRITTEN_FOR)
    assert pinned.returncode == 0, pinned.stderr
    assert 'SamVersionWarning' not in pinned.stderr
