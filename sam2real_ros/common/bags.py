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
Open rosbag2 files (sqlite3 or mcap) for reading, without ROS: the one bag opener.

Both bag readers (``sam2real extract-frames`` in :mod:`sam2real_ros.data.rosbag` and
``sam2real extract-episodes`` in :mod:`sam2real_ros.recording.extract`) open bags here, with the
pure-Python ``rosbags`` package. Bags written since ROS 2 Iron carry their message definitions;
older ones (sqlite3 bags from Humble and before) do not, and their types come from the Humble
type store, the newest distribution whose bags lack definitions.
"""
import contextlib
import os
from pathlib import Path

from sam2real_ros.common.errors import Sam2realError


class BagError(Sam2realError, ValueError):
    """A bag that is missing or cannot be opened (the message names it)."""


def bag_path(bag):
    """Return the bag folder ``rosbags`` reads; accept the .db3/.mcap file or metadata.yaml too."""
    p = Path(os.fspath(bag))
    if p.is_file() and (p.parent / 'metadata.yaml').is_file():
        return p.parent
    return p


def open_reader(bag):
    """
    Open ``bag`` and return the open reader; the caller closes it (or use :func:`open_bag`).

    Arguments:
    ---------
      bag (str | os.PathLike): rosbag2 folder, or its .db3/.mcap file or metadata.yaml.

    Returns
    -------
      (rosbags.highlevel.AnyReader): the open reader (``connections``, ``messages()``,
      ``deserialize()``, ``start_time``, ``end_time``, ``close()``).

    Raises
    ------
      BagError: the path does not exist or is not a readable bag.

    """
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import get_typestore, Stores

    if not os.path.exists(os.fspath(bag)):
        raise BagError(f'rosbag not found: {os.fspath(bag)}')
    try:
        reader = AnyReader([bag_path(bag)], default_typestore=get_typestore(Stores.ROS2_HUMBLE))
        reader.open()
    except Exception as e:  # rosbags raises its own error types for unreadable bags
        raise BagError(f'cannot open rosbag {os.fspath(bag)}: {type(e).__name__}: {e}') from None
    return reader


@contextlib.contextmanager
def open_bag(bag):
    """
    Open a bag for reading as a context manager; the reader is closed on exit.

    Same argument, reader and errors as :func:`open_reader`.
    """
    reader = open_reader(bag)
    try:
        yield reader
    finally:
        reader.close()
