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

"""The malformed-image generator (test/malformed_images.py) covers distinct decoder errors."""
import pytest

pytest.importorskip('sensor_msgs')
# I100: the ROS imports must follow the importorskip.
from malformed_images import good_image, interleaved, malformed_images  # noqa: E402, I100
from sam2real_ros.common.conversions import image_to_rgb8  # noqa: E402


def test_every_malformed_image_is_refused_with_its_reason():
    items = malformed_images()
    assert len({item.cause for item in items}) == len(items) >= 10
    for item in items:
        with pytest.raises(ValueError) as err:
            image_to_rgb8(item.msg)
        assert item.expect in str(err.value), (item.cause, str(err.value))
    assert image_to_rgb8(good_image()).shape == (48, 64, 3)


def test_interleaved_stream_alternates_good_and_bad():
    stream = list(interleaved(lambda i: good_image(value=i), rounds=2))
    causes = [cause for cause, _ in stream]
    assert causes[0] is None and causes[-1] is None
    assert all((c is None) != (d is None) for c, d in zip(causes, causes[1:]))
    assert sum(c is not None for c in causes) == 2 * len(malformed_images())
    goods = [image_to_rgb8(m)[0, 0, 0] for c, m in stream if c is None]
    assert goods == list(range(len(goods)))
