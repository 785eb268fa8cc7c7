"""l1ad: Level-1 trigger anomaly detection, from L1-format events to FPGA firmware.

The repository root is this package; each pipeline stage is a sub-package named for it:
events -> models/quantization -> hls -> emulation -> reports (plus evaluation and the CLI).
"""

__version__ = "0.1.0"
