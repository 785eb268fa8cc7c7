"""quantization stage of l1ad."""
