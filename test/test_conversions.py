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

"""Tests for common.conversions and nodes.messages with real sensor_msgs/Image messages."""
import array
import sys
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from sam2real_ros.common import conversions
from sam2real_ros.common.conversions import (
    ENCODINGS, image_to_depth_mm, image_to_numpy, image_to_rgb8)

Image = pytest.importorskip('sensor_msgs.msg').Image
from sam2real_ros.nodes.messages import numpy_to_image  # noqa: E402, I100
H, W = 5, 7


def _random(encoding, seed=0):
    dtype, channels = ENCODINGS[encoding]
    rng = np.random.default_rng(seed)
    shape = (H, W) if channels == 1 else (H, W, channels)
    if dtype.kind == 'f':
        return rng.standard_normal(shape).astype(dtype)
    return rng.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True).astype(dtype)


def _manual_msg(arr, encoding, pad=0, bigendian=False):
    """Build an Image by hand: ``pad`` extra bytes per row, explicit byte order."""
    arr = np.asarray(arr)
    order = '>' if bigendian else '<'
    raw = arr.astype(arr.dtype.newbyteorder(order)).reshape(arr.shape[0], -1).view(np.uint8)
    rows = np.zeros((arr.shape[0], raw.shape[1] + pad), np.uint8)
    rows[:, :raw.shape[1]] = raw
    rows[:, raw.shape[1]:] = 0xAB  # garbage in the padding must never show up
    msg = Image(height=arr.shape[0], width=arr.shape[1], encoding=encoding,
                is_bigendian=int(bigendian), step=rows.shape[1])
    msg.data = array.array('B', rows.tobytes())
    return msg


def test_decoder_imports_no_ros_and_no_cv_bridge():
    """common/conversions is the one ROS-free decoder: it must import without any ROS package."""
    import subprocess
    code = ('import sys; import sam2real_ros.common.conversions; '
            'bad = [m for m in sys.modules if m.split(".")[0] in '
            '("rclpy", "sensor_msgs", "std_msgs", "cv_bridge")]; '
            'print(bad); sys.exit(1 if bad else 0)')
    res = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize('encoding', sorted(ENCODINGS))
def test_round_trip_all_encodings(encoding):
    arr = _random(encoding)
    msg = numpy_to_image(arr, encoding)
    assert (msg.height, msg.width, msg.encoding) == (H, W, encoding)
    assert msg.step * msg.height == len(msg.data)
    assert msg.is_bigendian == int(sys.byteorder == 'big')
    assert isinstance(msg.data, array.array) and msg.data.typecode == 'B'
    back = image_to_numpy(msg)
    assert back.dtype == arr.dtype and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)


@pytest.mark.parametrize('encoding', sorted(ENCODINGS))
@pytest.mark.parametrize('bigendian', [False, True])
def test_padded_step_and_byte_order(encoding, bigendian):
    arr = _random(encoding, seed=1)
    msg = _manual_msg(arr, encoding, pad=ENCODINGS[encoding][0].itemsize * 3,
                      bigendian=bigendian)
    back = image_to_numpy(msg)
    assert back.dtype.isnative and back.dtype == arr.dtype
    np.testing.assert_array_equal(back, arr)


def test_big_endian_values_are_decoded_not_just_shaped():
    arr = np.array([[1, 256, 0x1234]], np.uint16)
    msg = _manual_msg(arr, 'mono16', bigendian=True)
    assert bytes(msg.data[:2]) == b'\x00\x01'  # really big-endian on the wire
    np.testing.assert_array_equal(image_to_numpy(msg), arr)
    f = np.array([[1.5, -2.25, 3e-7]], np.float32)
    np.testing.assert_array_equal(image_to_numpy(_manual_msg(f, '32FC1', bigendian=True)), f)


def test_header_is_copied():
    from std_msgs.msg import Header
    header = Header(frame_id='cam')
    header.stamp.sec, header.stamp.nanosec = 12, 345
    msg = numpy_to_image(np.zeros((2, 3), np.uint8), 'mono8', header=header)
    assert msg.header.frame_id == 'cam'
    assert conversions.stamp_to_ns(msg.header.stamp) == 12_000_000_345


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'rgba8', 'bgra8'])
def test_rgb8_from_colour_encodings(encoding):
    rgb = _random('rgb8', seed=2)
    if encoding.startswith('bgr'):
        arr = rgb[..., ::-1]
    else:
        arr = rgb
    if encoding.endswith('a8'):
        arr = np.concatenate([arr, np.full((H, W, 1), 77, np.uint8)], axis=2)
    out = image_to_rgb8(_manual_msg(arr, encoding, pad=4))
    assert out.dtype == np.uint8 and out.shape == (H, W, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, rgb)


def test_rgb8_from_mono():
    mono = _random('mono8', seed=3)
    out = image_to_rgb8(numpy_to_image(mono, 'mono8'))
    assert out.shape == (H, W, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], mono)
    mono16 = np.array([[0, 255, 256, 65535]], np.uint16)
    out16 = image_to_rgb8(_manual_msg(mono16, 'mono16', bigendian=True))
    np.testing.assert_array_equal(out16[0, :, 0], [0, 0, 1, 255])


def test_mono16_is_scaled_by_the_high_byte_even_when_all_values_are_small():
    """One scale for every frame: a dark mono16 frame (max <= 255) is not stretched."""
    dark = np.array([[0, 40, 200, 255]], np.uint16)
    np.testing.assert_array_equal(image_to_rgb8(numpy_to_image(dark, 'mono16'))[0, :, 0],
                                  [0, 0, 0, 0])
    bright = np.array([[0, 40, 512, 40000]], np.uint16)
    np.testing.assert_array_equal(image_to_rgb8(numpy_to_image(bright, 'mono16'))[0, :, 0],
                                  [0, 0, 2, 156])


def test_generic_8bit_encodings():
    grey = _random('mono8', seed=5)
    np.testing.assert_array_equal(image_to_rgb8(numpy_to_image(grey, '8UC1'))[..., 1], grey)
    rgb = _random('rgb8', seed=6)
    np.testing.assert_array_equal(image_to_rgb8(numpy_to_image(rgb[..., ::-1], '8UC3')), rgb)


def test_compressed_images_decode_to_rgb():
    rgb = _random('rgb8', seed=7)
    ok, png = cv2.imencode('.png', rgb[..., ::-1])
    msg = SimpleNamespace(format='png', data=png.ravel())
    np.testing.assert_array_equal(image_to_rgb8(msg), rgb)
    with pytest.raises(ValueError, match='does not decode'):
        image_to_rgb8(SimpleNamespace(format='jpeg', data=np.zeros(10, np.uint8)))
    with pytest.raises(ValueError, match='compressed depth'):
        image_to_rgb8(SimpleNamespace(format='16UC1; compressedDepth png', data=png.ravel()))


@pytest.mark.parametrize('encoding', ['16UC1', '32FC1'])
def test_rgb8_refuses_measurement_encodings(encoding):
    with pytest.raises(ValueError, match=encoding):
        image_to_rgb8(numpy_to_image(_random(encoding), encoding))


def test_depth_mm_from_16bit_and_metres():
    mm = np.array([[0, 1, 500], [1234, 65535, 7]], np.uint16)
    for enc in ('16UC1', 'mono16'):
        out = image_to_depth_mm(numpy_to_image(mm, enc))
        assert out.dtype == np.uint16
        np.testing.assert_array_equal(out, mm)
    metres = np.array([[0.0, np.nan, 0.5], [1.2344, -1.0, 70.0]], np.float32)
    np.testing.assert_array_equal(image_to_depth_mm(numpy_to_image(metres, '32FC1')),
                                  [[0, 0, 500], [1234, 0, 0]])
    with pytest.raises(ValueError, match='rgb8'):
        image_to_depth_mm(numpy_to_image(np.zeros((2, 2, 3), np.uint8), 'rgb8'))


def test_unsupported_encoding():
    msg = _manual_msg(np.zeros((2, 2), np.uint8), 'yuv422')
    with pytest.raises(ValueError, match="unsupported image encoding 'yuv422'"):
        image_to_numpy(msg)
    with pytest.raises(ValueError, match='unsupported'):
        image_to_rgb8(msg)
    with pytest.raises(ValueError, match="'jpeg'"):
        numpy_to_image(np.zeros((2, 2), np.uint8), 'jpeg')


def test_colour_decoder_lists_only_the_encodings_it_decodes():
    """16UC1/32FC1 are refused on a colour topic, so they are not listed as supported (#21)."""
    msg = _manual_msg(np.zeros((2, 2), np.uint8), 'yuv422')
    with pytest.raises(ValueError) as e:
        image_to_rgb8(msg)
    text = str(e.value)
    assert "unsupported image encoding 'yuv422'" in text and 'rgb8' in text and 'mono16' in text
    assert '16UC1' not in text and '32FC1' not in text, text


def test_size_and_step_mismatch():
    msg = _manual_msg(np.zeros((4, 6, 3), np.uint8), 'rgb8')
    msg.step = 17  # shorter than a row of 18 bytes
    with pytest.raises(ValueError, match='step=17 is shorter than one row'):
        image_to_numpy(msg)
    msg = _manual_msg(np.zeros((4, 6, 3), np.uint8), 'rgb8')
    msg.height = 5
    with pytest.raises(ValueError, match='72 bytes, expected step x height = 18 x 5 = 90'):
        image_to_numpy(msg)
    msg = _manual_msg(np.zeros((4, 6), np.uint16), 'mono16', pad=1)
    with pytest.raises(ValueError, match='not a multiple'):
        image_to_numpy(msg)
    msg = Image(height=0, width=0, encoding='mono8', step=0)
    with pytest.raises(ValueError, match='empty'):
        image_to_numpy(msg)


def test_numpy_to_image_refuses_bad_arrays():
    with pytest.raises(ValueError, match='needs a uint8 array, got float64'):
        numpy_to_image(np.zeros((2, 2, 3)), 'rgb8')
    with pytest.raises(ValueError, match=r'needs a HxWx3 array, got shape \(2, 2\)'):
        numpy_to_image(np.zeros((2, 2), np.uint8), 'rgb8')
    with pytest.raises(ValueError, match='HxWx4'):
        numpy_to_image(np.zeros((2, 2, 3), np.uint8), 'bgra8')
    with pytest.raises(ValueError, match='needs a uint16'):
        numpy_to_image(np.zeros((2, 2), np.int16), '16UC1')
    with pytest.raises(ValueError, match='empty'):
        numpy_to_image(np.zeros((0, 2), np.uint8), 'mono8')


def test_numpy_to_image_accepts_views_and_foreign_byte_order():
    base = _random('rgb8', seed=4)
    view = base[:, ::2]  # non-contiguous
    np.testing.assert_array_equal(image_to_numpy(numpy_to_image(view, 'rgb8')), view)
    swapped = np.array([[1, 2], [3, 400]], dtype='>u2' if sys.byteorder == 'little' else '<u2')
    back = image_to_numpy(numpy_to_image(swapped, '16UC1'))
    np.testing.assert_array_equal(back, [[1, 2], [3, 400]])
    one_channel = np.ones((2, 3, 1), np.float32)
    assert image_to_numpy(numpy_to_image(one_channel, '32FC1')).shape == (2, 3)


def test_fast_path_with_field_checks_on():
    """Building must not go through rclpy's per-byte check of a bytes/list ``data``."""
    frame = np.zeros((480, 640, 3), np.uint8)
    msg = numpy_to_image(frame, 'rgb8')
    checked = Image(check_fields=True)
    checked.data = msg.data  # an array.array('B') passes the type check without a scan
    assert checked.data is msg.data
