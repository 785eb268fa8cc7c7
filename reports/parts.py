"""Resources of the FPGA parts this project targets.

Logic resources (LUT, FF, DSP, BRAM_18K, URAM) are a property of the device (``xcvu9p``,
``xc7z020``), not of its package, speed grade or temperature range, so :func:`part_resources`
falls back from the exact part name to the device. Values come from the vendor reports in
``tests/data/vendor_reports`` where the part appears there (xcvu9p, xc7z020) and from the Xilinx
datasheets (DS890 UltraScale+, DS180 7-series, DS190 Zynq-7000) otherwise.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartResources:
    """Resources available on one FPGA part; ``as_dict`` uses the report key names."""

    part: str
    device: str
    lut: int
    ff: int
    dsp: int
    bram_18k: int
    uram: int = 0

    def as_dict(self) -> dict[str, int]:
        """``{"LUT", "FF", "DSP", "BRAM_18K", "URAM"}`` as in the parsed vendor reports."""
        return {"LUT": self.lut, "FF": self.ff, "DSP": self.dsp, "BRAM_18K": self.bram_18k, "URAM": self.uram}

    def to_json(self) -> dict[str, int | str]:
        return asdict(self)


_VU13P = {
    "device": "xcvu13p",
    "lut": 1_728_000,
    "ff": 3_456_000,
    "dsp": 12_288,
    "bram_18k": 5_376,
    "uram": 1_280,
}
# Same numbers as the AvailableResources of the Vitis HLS 2024.1 report (xcvu9p-flga2104-2-e).
_VU9P = {"device": "xcvu9p", "lut": 1_182_240, "ff": 2_364_480, "dsp": 6_840, "bram_18k": 4_320, "uram": 960}
_7VX690T = {"device": "xc7vx690t", "lut": 433_200, "ff": 866_400, "dsp": 3_600, "bram_18k": 2_940, "uram": 0}
# Same numbers as the Available row of the Vivado HLS 2020.1 report (xc7z020-clg400-1).
_Z7020 = {"device": "xc7z020", "lut": 53_200, "ff": 106_400, "dsp": 220, "bram_18k": 280, "uram": 0}

PARTS: dict[str, PartResources] = {
    p.part: p
    for p in (
        PartResources(part="xcvu13p-flga2577-2-e", **_VU13P),
        PartResources(part="xcvu9p-flga2104-2L-e", **_VU9P),
        PartResources(part="xcvu9p-flga2104-2-e", **_VU9P),
        PartResources(part="xc7vx690tffg1927-2", **_7VX690T),
        PartResources(part="xc7z020-clg400-1", **_Z7020),
    )
}

# After the device name comes '-' (UltraScale: xcvu9p-flga2104-2-e) or the package code glued on
# (7-series: xc7vx690tffg1927-2, or report_utilization's 7z020clg400-1): letters then digits.
_SUFFIX = re.compile(r"(-.*|[a-z]{2,5}\d{3,4}(-.*)?)?")


def known_parts() -> list[str]:
    """Part names in the database."""
    return sorted(PARTS)


def _normalize(name: str) -> str:
    name = name.strip().lower()
    # Vivado's report_utilization prints the device without the 'xc' prefix ('7z020clg400-1').
    return f"xc{name}" if name[:1].isdigit() else name


def part_resources(part_name: str) -> PartResources:
    """Resources of ``part_name``: exact name first, then any known part of the same device.

    Raises ``KeyError`` listing the known parts when neither matches.
    """
    wanted = _normalize(part_name)
    for part in PARTS.values():
        if part.part.lower() == wanted:
            return part
    # Longest device first, so that a shorter device name can never shadow a longer one.
    for part in sorted(PARTS.values(), key=lambda p: len(p.device), reverse=True):
        rest = wanted.removeprefix(part.device)
        if rest != wanted and _SUFFIX.fullmatch(rest):
            logger.debug("part %s: using the resources of %s (same device)", part_name, part.part)
            return part
    raise KeyError(f"unknown FPGA part {part_name!r}; known parts: {', '.join(known_parts())}")
