"""sam2real: SAM-regularized sim2real segmentation (ROS-free core + thin ROS 2 nodes)."""
