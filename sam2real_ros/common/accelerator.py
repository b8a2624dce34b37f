"""Give memory back after a model is dropped: the one helper the lifecycle nodes' workers use."""
import gc
import sys


def free_accelerator_memory():
    """
    Collect garbage and return PyTorch's cached GPU memory to the driver (when torch uses CUDA).

    Never imports torch or initializes CUDA itself: a process that did not use them pays nothing.
    """
    gc.collect()
    torch = sys.modules.get('torch')
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
