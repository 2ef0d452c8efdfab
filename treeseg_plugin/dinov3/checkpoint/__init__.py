"""DINOv3 checkpoints: reading files safely, the layout and architecture from the tensors, the Hugging Face
name map, strict verification and loading."""
