"""The DINOv3 layers, one concept per module (as in facebookresearch/dinov3 ``layers/``)."""
