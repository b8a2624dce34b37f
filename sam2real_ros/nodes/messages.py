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
Build sensor_msgs/Image messages from numpy arrays (ROS side of the image conversion).

Decoding lives in :mod:`sam2real_ros.common.conversions` (ROS-free, works on rclpy and
``rosbags`` messages alike); this module builds messages and therefore imports sensor_msgs.

Building a message never assigns ``bytes`` to ``msg.data``: with ``ROS_PYTHON_CHECK_FIELDS=1``
rclpy checks every byte of a sequence (~140 ms for a 640x480 rgb8 frame, measured), whereas an
``array.array('B')`` filled with ``frombytes`` from a memoryview is accepted as is (~0.2-0.3 ms).
"""
import array
import sys

import numpy as np
from sam2real_ros.common.conversions import ENCODINGS
from sensor_msgs.msg import Image


def numpy_to_image(arr, encoding, header=None):
    """
    Build a sensor_msgs/Image from a numpy array (fast path, no per-byte field checks).

    Arguments:
    ---------
        arr (np.ndarray): HxW (or HxWx1) for one-channel encodings, HxWxC otherwise; its dtype
            must be the encoding's (uint8, uint16 or float32; any byte order) -- values are
            never cast silently.
        encoding (str): one of :data:`ENCODINGS`.
        header (std_msgs.msg.Header | None): copied into the message (stamp and frame_id).

    Returns
    -------
        (sensor_msgs.msg.Image): unpadded (``step = width * channels * itemsize``), native
            byte order (``is_bigendian`` set accordingly), data as ``array.array('B')``.

    Raises
    ------
        ValueError: unsupported encoding, or a shape/dtype that does not fit it.

    """
    if encoding not in ENCODINGS:
        raise ValueError(f'unsupported image encoding {encoding!r} (supported: '
                         f'{", ".join(ENCODINGS)})')
    dtype, channels = ENCODINGS[encoding]
    arr = np.asarray(arr)
    if arr.dtype.newbyteorder('=') != dtype.newbyteorder('=') or arr.dtype.kind != dtype.kind:
        raise ValueError(f'{encoding} needs a {dtype.name} array, got {arr.dtype}')
    if channels == 1 and arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    want = 2 if channels == 1 else 3
    if arr.ndim != want or (channels > 1 and arr.shape[2] != channels):
        wanted = 'HxW' if channels == 1 else f'HxWx{channels}'
        raise ValueError(f'{encoding} needs a {wanted} array, got shape {arr.shape}')
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f'cannot build an empty {encoding} image (shape {arr.shape})')
    arr = np.ascontiguousarray(arr, dtype=dtype.newbyteorder('='))
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(arr.shape[0]), int(arr.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = int(sys.byteorder == 'big')
    msg.step = int(arr.shape[1] * channels * dtype.itemsize)
    data = array.array('B')
    data.frombytes(memoryview(arr).cast('B'))
    msg.data = data
    return msg
