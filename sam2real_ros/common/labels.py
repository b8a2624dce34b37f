"""
Label images, the contract between datasets, model, engine and nodes.

A label image is HxW uint8: pixel value ``c`` is class ``c`` of the model's ``class_names`` and
0 is ``background``; the segmentation node publishes it as ``mono8``. So a model, a dataset and a
label palette hold at most :data:`MAX_CLASSES` classes, and every check of a class count uses
this constant.
"""
MAX_CLASSES = 256
"""Most classes a label image can hold (uint8 / mono8 values 0..255)."""
