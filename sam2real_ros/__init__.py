"""sam2real: SAM-regularized sim2real segmentation (ROS-free core + thin ROS 2 nodes)."""


def version():
    """Return the installed package's version string, ``'unknown'`` when it is not installed."""
    from importlib import metadata
    try:
        return metadata.version('sam2real')
    except metadata.PackageNotFoundError:
        return 'unknown'
