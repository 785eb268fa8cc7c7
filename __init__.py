"""l1ad: Level-1 trigger anomaly detection, from L1-format events to FPGA firmware.

The repository root is this package; each pipeline stage is a sub-package named for it, and imports
point one way only (``tests/test_architecture.py``):
core -> events -> quantization -> models -> evaluation -> hls -> emulation -> reports -> serving -> cli.
"""

__version__ = "0.1.0"
