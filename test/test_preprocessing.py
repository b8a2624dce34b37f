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

"""One preprocessing path: trainer batches, trainer evaluation and the engine see one input."""
import os

import cv2
import numpy as np
import pytest
from sam2real_ros.data.procedural import TabletopRenderer
from sam2real_ros.inference.engine import SegmentationEngine
from sam2real_ros.inference.export import model_metadata
from sam2real_ros.modeling import model as mdl
from sam2real_ros.modeling.preprocessing import preprocess, resize_features, resize_masks
from sam2real_ros.training import config as train_config
from sam2real_ros.training import evaluate
from sam2real_ros.training.batching import prepare_batch
from sam2real_ros.training.trainer import Trainer
import torch

CLASSES = ['background', 'mug', 'box']
TINY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'training',
                    'configs', 'tiny_cpu.yaml')


@pytest.fixture(scope='module')
def scene():
    """Render a 480x640 procedural "robot camera" frame with its labels."""
    return TabletopRenderer('real', (480, 640)).render(3)


@pytest.mark.parametrize('size', [(96, 128), (200, 260), (480, 640), (600, 800), None])
def test_trainer_batch_and_engine_input_are_the_same_tensor(scene, size):
    cfg = mdl.ModelConfig(backbone='convnext_atto', pretrained=False, num_classes=3,
                          input_size=size, mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3))
    seen = []

    def network(x, want_features):
        """Record the engine's network input; answer with background labels."""
        seen.append(x.copy())
        return np.zeros(x.shape[2:], np.uint8), None

    engine = SegmentationEngine(network, model_metadata(cfg, CLASSES, size), 'recording',
                                ['cpu'], False)
    labels = engine.predict(scene['rgb'], want_features=False).labels
    assert labels.shape == scene['rgb'].shape[:2]
    batch = prepare_batch([{'rgb': scene['rgb'], 'labels': scene['labels'], 'key': 'k'}], size,
                          cfg.mean, cfg.std, ('labels',), 'test')
    x = batch['x'].numpy()
    assert x.dtype == np.float32 and x.shape == seen[0].shape
    assert x.shape[2:] == (tuple(size) if size else (480, 640))
    assert np.array_equal(x, seen[0])
    assert batch['labels'].shape[1:] == x.shape[2:]


def test_trainer_evaluation_equals_the_engine_when_image_size_differs(tmp_path):
    # image_size (the training resolution) differs from the model's input_size (64x64): the
    # trainer's per-epoch evaluation must still run the model as the deployed engine does
    cfg = train_config.load_config(TINY, [
        'image_size=[48,80]', 'data.eval_frames=3', 'log.progress=false',
        'log.tensorboard=false'])
    tr = Trainer(cfg, str(tmp_path / 'run'))
    summary, _ = tr.evaluate()
    path = tmp_path / 'ema.pt'
    torch.save(mdl.checkpoint_payload(tr.ema, tr.model_cfg, tr.class_names), path)
    engine = SegmentationEngine.load(str(path), backend='torch', device='cpu')
    assert engine.input_size == (64, 64)
    served = evaluate.evaluate(engine, tr.eval_ds, frames=3, progress=False)
    assert served['frames'] == summary['frames'] == 3
    assert served['miou'] == pytest.approx(summary['miou'], abs=1e-9)


def test_preprocess_resizes_and_normalizes():
    mean, std = mdl.IMAGENET_MEAN, mdl.IMAGENET_STD
    rgb = np.full((96, 128, 3), (128, 0, 255), np.uint8)
    x = preprocess(rgb, mean, std, (48, 64))
    assert x.shape == (1, 3, 48, 64) and x.dtype == np.float32
    expect = (np.array([128, 0, 255]) / 255.0 - np.array(mean)) / np.array(std)
    assert np.allclose(x[0].mean(axis=(1, 2)), expect, atol=1e-5)
    assert preprocess(rgb, mean, std).shape == (1, 3, 96, 128)
    for bad in (rgb.astype(np.float32), rgb[:, :, 0], rgb[:, :, :2], rgb.tolist()):
        with pytest.raises(ValueError, match='HxWx3 uint8'):
            preprocess(bad, mean, std, (48, 64))


def test_resize_masks_matches_opencv_nearest_and_keeps_bool():
    masks = np.random.default_rng(0).random((700, 24, 32)) > 0.5   # > OpenCV's channel limit
    for size in [(16, 16), (50, 77)]:
        got = resize_masks(masks, size)
        ref = np.stack([cv2.resize(m.astype(np.uint8), (size[1], size[0]),
                                   interpolation=cv2.INTER_NEAREST) > 0 for m in masks])
        assert got.dtype == bool and np.array_equal(got, ref)
    assert resize_masks(np.zeros((0, 24, 32), bool), (8, 8)).shape == (0, 8, 8)


def test_feature_resize_handles_many_channels():
    rng = np.random.default_rng(0)
    feats = rng.random((30, 40, 300), dtype=np.float32)
    out = resize_features(feats, (60, 80))
    assert out.shape == (60, 80, 300) and out.dtype == np.float32
    # Each channel is resized on its own: compare channel 250 with a single-channel resize.
    single = resize_features(np.ascontiguousarray(feats[:, :, 250:251]), (60, 80))
    assert np.allclose(out[:, :, 250], single[:, :, 0])
