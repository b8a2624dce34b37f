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
