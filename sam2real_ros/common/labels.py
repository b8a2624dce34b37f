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
Label images, the contract between datasets, model, engine and nodes.

A label image is HxW uint8: pixel value ``c`` is class ``c`` of the model's ``class_names`` and
0 is ``background``; the segmentation node publishes it as ``mono8``. So a model, a dataset and a
label palette hold at most :data:`MAX_CLASSES` classes, and every check of a class count uses
this constant. In ground truth, :data:`IGNORE_INDEX` marks pixels that count in no loss and no
IoU.
"""
MAX_CLASSES = 256
"""Most classes a label image can hold (uint8 / mono8 values 0..255)."""
IGNORE_INDEX = 255
"""Ground-truth value of unlabeled pixels (default of the training config's loss.ignore_index)."""


def class_names_problem(names):
    """Return why ``names`` cannot name a model's classes (one line), or None."""
    if not names:
        return 'give at least one class name'
    if len(names) > MAX_CLASSES:
        return f'{len(names)} classes, at most {MAX_CLASSES} (labels are mono8)'
    seen = set()
    for name in names:
        if name in seen:
            return f'class name {name!r} given twice'
        seen.add(name)
    return None
