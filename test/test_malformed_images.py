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
