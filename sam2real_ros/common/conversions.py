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
Decode image messages into numpy arrays, without ROS: the one image decoder.

Works on any object with ``encoding``, ``height``, ``width``, ``step``, ``is_bigendian`` and
``data`` (rclpy sensor_msgs/Image and ``rosbags`` messages alike) and never imports a ROS
package or ``cv_bridge``. The nodes, ``sam2real extract-episodes`` and ``sam2real
extract-frames`` all decode through it, so the same message gives the same pixels everywhere.
Building a sensor_msgs/Image is :func:`sam2real_ros.nodes.messages.numpy_to_image`.

Decoding honours ``step`` padding and ``is_bigendian``; every message is validated first, so a
bad message raises one clear :class:`ValueError` naming the field and value.

Supported encodings: ``rgb8 bgr8 rgba8 bgra8 mono8 mono16 16UC1 32FC1`` and the generic
``8UC1`` (grey, as ``mono8``) and ``8UC3`` (OpenCV's BGR order, as ``bgr8``);
sensor_msgs/CompressedImage (JPEG, PNG) for colour.
"""
import sys

import numpy as np

# encoding -> (dtype, channels)
ENCODINGS = {
    'rgb8': (np.dtype(np.uint8), 3),
    'bgr8': (np.dtype(np.uint8), 3),
    'rgba8': (np.dtype(np.uint8), 4),
    'bgra8': (np.dtype(np.uint8), 4),
    'mono8': (np.dtype(np.uint8), 1),
    'mono16': (np.dtype(np.uint16), 1),
    '16UC1': (np.dtype(np.uint16), 1),
    '32FC1': (np.dtype(np.float32), 1),
    '8UC1': (np.dtype(np.uint8), 1),
    '8UC3': (np.dtype(np.uint8), 3),
}
# encodings that hold depth or measurements, never colours
MEASUREMENT_ENCODINGS = ('16UC1', '32FC1')
# what image_to_rgb8 decodes (besides compressed images)
COLOUR_ENCODINGS = tuple(e for e in ENCODINGS if e not in MEASUREMENT_ENCODINGS)


def _layout(msg):
    """
    Validate ``msg`` and return ``(dtype, channels, height, width, step)``.

    Raises
    ------
        ValueError: unsupported encoding, zero size, a ``step`` shorter than one row or not a
            multiple of the pixel's byte size, or ``len(data) != step * height``.

    """
    enc = msg.encoding
    if enc not in ENCODINGS:
        raise ValueError(f'unsupported image encoding {enc!r} (supported: '
                         f'{", ".join(ENCODINGS)})')
    dtype, channels = ENCODINGS[enc]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ValueError(f'empty {enc} image: height={height} width={width}')
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ValueError(f'{enc} image step={step} is shorter than one row '
                         f'(width {width} x {channels} ch x {dtype.itemsize} B = {row_bytes})')
    if step % dtype.itemsize:
        raise ValueError(f'{enc} image step={step} is not a multiple of the '
                         f'{dtype.itemsize}-byte pixel component')
    size = len(msg.data)
    if size != step * height:
        raise ValueError(f'{enc} image data has {size} bytes, expected step x height = '
                         f'{step} x {height} = {step * height}')
    return dtype, channels, height, width, step


def image_to_numpy(msg):
    """
    Decode a sensor_msgs/Image into a numpy array in native byte order.

    Arguments:
    ---------
        msg (sensor_msgs.msg.Image): the image, any encoding of :data:`ENCODINGS`.

    Returns
    -------
        (np.ndarray): HxW for one-channel encodings, HxWxC otherwise, with the encoding's
            dtype (uint8, uint16 or float32) and channel order (e.g. BGR for ``bgr8``). When the
            message needs no byte swap this is a view of ``msg.data`` (row padding skipped by
            strides): copy it if you keep it beyond the message.

    Raises
    ------
        ValueError: unsupported encoding or a size/step mismatch (see :func:`_layout`).

    """
    dtype, channels, height, width, step = _layout(msg)
    swap = bool(msg.is_bigendian) != (sys.byteorder == 'big') and dtype.itemsize > 1
    raw = np.frombuffer(msg.data, dtype=np.uint8)
    if channels == 1:
        shape, strides = (height, width), (step, dtype.itemsize)
    else:
        shape = (height, width, channels)
        strides = (step, channels * dtype.itemsize, dtype.itemsize)
    file_dtype = dtype.newbyteorder('>' if msg.is_bigendian else '<') if swap else dtype
    out = np.ndarray(shape, dtype=file_dtype, buffer=raw, strides=strides)
    if swap:
        out = out.astype(dtype)  # native order copy
    return out


def image_to_rgb8(msg):
    """
    Decode any colour or mono image message into the model's RGB input.

    Arguments:
    ---------
        msg (sensor_msgs.msg.Image | sensor_msgs.msg.CompressedImage): ``rgb8``, ``bgr8``,
            ``rgba8``, ``bgra8``, ``mono8``/``8UC1``, ``8UC3`` (BGR) or ``mono16`` (always
            scaled to 8 bits by the high byte, whatever the frame's values, so every frame of a
            stream gets the same scale); or a compressed image (JPEG, PNG; anything
            ``cv2.imdecode`` reads as colour or grey).

    Returns
    -------
        (np.ndarray): HxWx3 uint8, RGB order, C-contiguous (for ``rgb8`` without padding a
            view of ``msg.data``).

    Raises
    ------
        ValueError: unsupported or non-image encoding (``16UC1``/``32FC1`` and compressed
            depth hold depth or measurements, not colours), a size/step mismatch, or
            compressed data that does not decode.

    """
    if not hasattr(msg, 'encoding') and hasattr(msg, 'format'):
        return compressed_to_rgb8(msg)
    enc = msg.encoding
    if enc not in ENCODINGS:
        raise ValueError(f'unsupported image encoding {enc!r} (colour encodings: '
                         f'{", ".join(COLOUR_ENCODINGS)})')
    if enc in MEASUREMENT_ENCODINGS:
        raise ValueError(f'image encoding {enc!r} is a depth/measurement encoding, '
                         'not a colour or mono image the model can segment')
    arr = image_to_numpy(msg)
    if enc == 'rgb8':
        rgb = arr
    elif enc == 'rgba8':
        rgb = arr[..., :3]
    elif enc in ('bgr8', 'bgra8', '8UC3'):
        rgb = arr[..., 2::-1]
    else:  # mono8 / 8UC1 / mono16
        mono = (arr >> 8).astype(np.uint8) if enc == 'mono16' else arr
        rgb = np.repeat(mono[..., None], 3, axis=2)
    return np.ascontiguousarray(rgb)


def compressed_to_rgb8(msg):
    """
    Decode a sensor_msgs/CompressedImage (JPEG, PNG) into HxWx3 uint8 RGB.

    Raises
    ------
        ValueError: compressed depth (``compressedDepth`` format) or undecodable data.

    """
    import cv2

    fmt = str(msg.format)
    if 'compresseddepth' in fmt.lower().replace(' ', ''):
        raise ValueError(f'compressed image format {fmt!r} is compressed depth, not a colour '
                         'or mono image the model can segment')
    data = np.frombuffer(msg.data, np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise ValueError(f'compressed image ({fmt or "no format"}, {data.size} bytes) does not '
                         'decode')
    return np.ascontiguousarray(img[:, :, ::-1])


def image_to_depth_mm(msg):
    """
    Decode a depth sensor_msgs/Image into uint16 millimetres (the episode store's depth).

    Arguments:
    ---------
        msg (sensor_msgs.msg.Image): ``16UC1`` or ``mono16`` (millimetres, the OpenNI/Astra
            convention) or ``32FC1`` (metres, REP 118; NaN and out-of-range become 0).

    Returns
    -------
        (np.ndarray): HxW uint16 millimetres, 0 = no measurement.

    Raises
    ------
        ValueError: any other encoding, or a size/step mismatch.

    """
    if msg.encoding not in ('16UC1', 'mono16', '32FC1'):
        raise ValueError(f'depth encoding {msg.encoding!r} is not supported: use 16UC1 or '
                         'mono16 (mm) or 32FC1 (m)')
    depth = image_to_numpy(msg)
    if msg.encoding == '32FC1':
        mm = np.nan_to_num(depth.astype(np.float64) * 1000.0, nan=0.0, posinf=0.0, neginf=0.0)
        mm[(mm < 0) | (mm > 65535)] = 0
        return np.rint(mm).astype(np.uint16)
    return np.ascontiguousarray(depth, dtype=np.uint16)


def stamp_to_ns(stamp):
    """Return a builtin_interfaces/Time as integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)
