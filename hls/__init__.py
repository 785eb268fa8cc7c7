"""hls stage of l1ad."""
