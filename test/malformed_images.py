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
Malformed sensor_msgs/Image messages for the nodes' bad-input tests (issue 12).

``malformed_images()`` returns one :class:`BadImage` per cause a camera topic can carry: wrong
``step``, data shorter than ``height * step``, zero size, an unknown encoding, depth encodings on
a colour topic, huge dimensions. ``interleaved(good, rounds)`` yields them between good frames,
for a stream that checks a node keeps running, answers every good frame, counts the bad ones
with their reason and logs each cause once. Shared by the segmentation node's and the
recorder's tests.
"""
import array
import dataclasses

import numpy as np
from sam2real_ros.nodes.messages import numpy_to_image


@dataclasses.dataclass
class BadImage:
    """
    One malformed message and what a decoder says about it.

    Attributes
    ----------
      cause (str): short name of the fault (``wrong_step``, ``short_data``, ...).
      msg (sensor_msgs.msg.Image): the message.
      expect (str): a fragment of the decoder's error line for it
        (``sam2real_ros.common.conversions.image_to_rgb8``).

    """

    cause: str
    msg: object
    expect: str


def good_image(height=48, width=64, encoding='rgb8', value=0):
    """Return a valid image (``rgb8`` by default) filled with ``value``."""
    channels = {'rgb8': 3, 'bgr8': 3, 'mono8': 1}[encoding]
    shape = (height, width, channels) if channels > 1 else (height, width)
    return numpy_to_image(np.full(shape, value, np.uint8), encoding)


def malformed_images(height=48, width=64):
    """
    Return one :class:`BadImage` per cause, built from ``height`` x ``width`` frames.

    Returns
    -------
      (list[BadImage]): ``wrong_step`` (step shorter than a row), ``step_not_multiple``
      (mono16 step of an odd number of bytes), ``short_data`` (data shorter than height *
      step), ``long_data``, ``zero_size``, ``unknown_encoding`` (``yuv422``), ``empty_encoding``,
      ``depth_16UC1`` and ``depth_32FC1`` (depth on a colour topic), ``huge_dimensions`` (100000 x
      100000 with a few bytes of data) and ``max_dimensions`` (every size field 2**32 - 1).

    """
    out = []

    def bad(cause, expect, msg):
        out.append(BadImage(cause, msg, expect))

    msg = good_image(height, width)
    msg.step = width * 3 - 1
    bad('wrong_step', 'shorter than one row', msg)

    msg = numpy_to_image(np.zeros((height, width), np.uint16), 'mono16')
    msg.step = width * 2 + 1
    msg.data = array.array('B', bytes(msg.step * height))
    bad('step_not_multiple', 'not a multiple', msg)

    msg = good_image(height, width)
    msg.data = array.array('B', bytes(msg.data)[:len(msg.data) // 2])
    bad('short_data', 'expected step x height', msg)

    msg = good_image(height, width)
    msg.data = array.array('B', bytes(msg.data) + bytes(7))
    bad('long_data', 'expected step x height', msg)

    msg = good_image(height, width)
    msg.height = msg.width = msg.step = 0
    msg.data = array.array('B')
    bad('zero_size', 'empty', msg)

    msg = good_image(height, width)
    msg.encoding = 'yuv422'
    bad('unknown_encoding', "unsupported image encoding 'yuv422'", msg)

    msg = good_image(height, width)
    msg.encoding = ''
    bad('empty_encoding', "unsupported image encoding ''", msg)

    bad('depth_16UC1', "'16UC1' is a depth",
        numpy_to_image(np.full((height, width), 1000, np.uint16), '16UC1'))
    bad('depth_32FC1', "'32FC1' is a depth",
        numpy_to_image(np.full((height, width), 1.0, np.float32), '32FC1'))

    msg = good_image(4, 4)
    msg.height, msg.width, msg.step = 100_000, 100_000, 300_000
    bad('huge_dimensions', 'expected step x height', msg)

    msg = good_image(4, 4)
    msg.height = msg.width = msg.step = 2**32 - 1
    bad('max_dimensions', 'shorter than one row', msg)
    return out


def interleaved(good, rounds=1):
    """
    Yield good frames with each malformed message in turn between them.

    Arguments:
    ---------
      good (callable): ``good(i) -> Image``, the i-th good frame (give each a distinct stamp
        to match answers to frames).
      rounds (int): how often the whole set of malformed messages is sent.

    Yields
    ------
      (tuple): ``(cause, msg)``, cause ``None`` for a good frame; the stream starts and ends
      with a good frame.

    """
    i = 0
    for _ in range(rounds):
        for item in malformed_images():
            yield None, good(i)
            i += 1
            yield item.cause, item.msg
    yield None, good(i)
